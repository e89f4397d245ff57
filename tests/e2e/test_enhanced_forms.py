"""With JavaScript on, the message composers post through htmx: the conversation updates in
place (no page load), errors and typed text come back in place, and an ended session leads to
the login page and back. test_bad_input.py covers the same forms with JavaScript off."""

from __future__ import annotations

from typing import Any

from tests.e2e.helpers import login

MARK = "window.__sameDocument = 'yes'"
SAME_DOCUMENT = "window.__sameDocument === 'yes'"


async def _first_thread(page: Any) -> str:
    await page.goto("/therapist/caseload")
    hrefs = await page.eval_on_selector_all(
        "main a[href^='/therapist/patients/']", "links => links.map(a => a.pathname)"
    )
    patient = next(h for h in hrefs if h.rstrip("/").split("/")[-1].isdigit())
    return f"{patient}/messages"


async def test_therapist_reply_updates_the_thread_in_place(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "therapist2@demo.tuki.test")
    await page.goto(await _first_thread(page))
    await page.evaluate(MARK)

    await page.locator("#f-body").fill("")
    await page.locator("#composer button[value=send]").click()
    await page.locator(".error-summary").wait_for()
    assert await page.evaluate(SAME_DOCUMENT), "the error came back with a page load"

    text = "Good to hear the walk helped. Same time tomorrow?"
    await page.locator("#f-body").fill(text)
    await page.locator("#composer button[value=send]").click()
    await page.locator("#conversation").get_by_text(text, exact=True).wait_for()
    assert await page.evaluate(SAME_DOCUMENT), "sending reloaded the page"
    assert await page.locator("#f-body").input_value() == ""
    assert await page.locator(".error-summary").count() == 0


async def test_patient_message_sends_in_place_once_despite_a_double_click(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "insomnia@demo.tuki.test")
    await page.goto("/patient/messages")
    await page.evaluate(MARK)
    text = "Slept six hours last night, the longest in weeks."
    await page.locator("#f-body").fill(text)
    await page.locator("#composer button[type=submit]").dblclick()
    await page.locator("#conversation").get_by_text(text, exact=True).first.wait_for()
    assert await page.evaluate(SAME_DOCUMENT)
    await page.reload()
    assert await page.locator("#conversation").get_by_text(text, exact=True).count() == 1


async def test_an_ended_session_sends_the_composer_to_login_and_back(context_factory) -> None:  # type: ignore[no-untyped-def]
    context = await context_factory()
    page = await context.new_page()
    await login(page, "alcohol@demo.tuki.test")
    await page.goto("/patient/messages")
    await context.clear_cookies()
    await page.locator("#f-body").fill("Are you there?")
    async with page.expect_navigation():
        await page.locator("#composer button[type=submit]").click()
    assert "/login" in page.url and "next=%2Fpatient%2Fmessages" in page.url
    await page.locator("#f-email").fill("alcohol@demo.tuki.test")
    await page.locator("#f-password").fill("tuki-demo-2026")
    async with page.expect_navigation():
        await page.locator("#f-password").press("Enter")
    assert page.url.endswith("/patient/messages")
