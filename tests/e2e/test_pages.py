"""Every main page of each role on a 360-pixel phone: no sideways scrolling, and axe-core
(vendored under tests/e2e/vendor, injected by the test only) finds no serious or critical
accessibility violations. Also on a desktop width for axe, since layouts differ."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import login

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}

PAGES: dict[str, tuple[str | None, list[str]]] = {
    "anonymous": (None, ["/login"]),
    "admin": (
        "admin@demo.tuki.test",
        [
            "/admin",
            "/admin/enroll",
            "{enrollment}",
            "/admin/settings",
            "/admin/reminders",
            "/admin/messages",
            "/admin/reports",
            "/admin/reports/data-dictionary",
            "/notifications",
            "/account",
        ],
    ),
    "therapist": (
        "therapist1@demo.tuki.test",
        [
            "/therapist",
            "/therapist/caseload",
            "{patient}",
            "{patient}/messages",
            "{patient}/timeline",
            "/therapist/snippets",
            "/therapist/away",
            "/account",
        ],
    ),
    "patient": (
        "depression@demo.tuki.test",
        [
            "/patient",
            "/patient/modules",
            "{module}",
            "/patient/messages",
            "/patient/questionnaires",
            "/patient/scores",
            "/patient/reminders",
            "/notifications",
            "/account",
        ],
    ),
}


async def _first_href(page: Any, start: str, pattern: str) -> str:
    await page.goto(start)
    hrefs = await page.eval_on_selector_all("main a[href]", "links => links.map(a => a.pathname)")
    return next(h for h in hrefs if re.fullmatch(pattern, h))


async def _paths(page: Any, templates: list[str]) -> list[str]:
    paths = []
    for path in templates:
        if path == "{enrollment}":
            path = await _first_href(page, "/admin", r"/admin/enrollments/\d+")
        elif path.startswith("{patient}"):
            base = await _first_href(page, "/therapist/caseload", r"/therapist/patients/\d+")
            path = base + path.removeprefix("{patient}")
        elif path == "{module}":
            path = await _first_href(page, "/patient/modules", r"/patient/modules/[^/]+/[^/]+")
        paths.append(path)
    return paths


async def _serious_violations(page: Any) -> list[str]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# Finnish words run longer than English ones: the same pages again in the Finnish interface.
PAGES["patient (fi)"] = ("social-anxiety@demo.tuki.test", PAGES["patient"][1])
PAGES["therapist (fi)"] = ("therapist3@demo.tuki.test", PAGES["therapist"][1])
PAGES["admin (fi)"] = PAGES["admin"]


@pytest.mark.parametrize("role", list(PAGES))
async def test_main_pages_fit_a_phone_and_pass_axe(context_factory, role: str) -> None:  # type: ignore[no-untyped-def]
    email, templates = PAGES[role]
    locale = "fi-FI" if role.endswith("(fi)") else "en-GB"
    context = await context_factory(viewport=PHONE, bypass_csp=True, locale=locale)
    page = await context.new_page()
    if email:
        await login(page, email)
    problems: list[str] = []
    for path in await _paths(page, templates):
        for viewport in (PHONE, DESKTOP):
            await page.set_viewport_size(viewport)
            response = await page.goto(path)
            assert response is not None
            assert response.status == 200, path
            assert await page.get_attribute("html", "lang") == locale[:2], path
            if viewport is PHONE:
                width = await page.evaluate("document.documentElement.scrollWidth")
                if width > PHONE["width"]:
                    problems.append(f"{path}: {width}px wide at 360px")
            problems += [
                f"{path} @{viewport['width']}: {v}" for v in await _serious_violations(page)
            ]
    assert not problems, "\n".join(problems)


async def test_skip_link_is_the_first_stop_and_moves_focus_to_main(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "depression@demo.tuki.test")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.keyboard.press("Enter")
    assert page.url.endswith("#main")
