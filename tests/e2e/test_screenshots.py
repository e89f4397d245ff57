"""The main page of each role at phone and desktop widths, as shown in the README.

Every run takes the pictures and checks them (full page, no sideways scroll, the page's own
heading visible). ``make screenshots`` points TUKI_SCREENSHOT_DIR at docs/screenshots to
refresh the committed ones; otherwise they go to a temporary directory.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import login
from tests.e2e.test_pages import DESKTOP, PHONE

MAX_HEIGHT = 1800
SHOTS = [
    ("patient", "depression@demo.tuki.test", "/patient", "en-GB"),
    ("patient-fi", "panic@demo.tuki.test", "/patient", "fi-FI"),
    ("therapist", "therapist1@demo.tuki.test", "/therapist", "en-GB"),
    ("admin", "admin@demo.tuki.test", "/admin", "en-GB"),
]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("TUKI_SCREENSHOT_DIR")
    target = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.mark.parametrize(("name", "email", "path", "locale"), SHOTS, ids=[s[0] for s in SHOTS])
async def test_main_page_screenshots(  # type: ignore[no-untyped-def]
    context_factory, shot_dir: Path, name: str, email: str, path: str, locale: str
) -> None:
    context = await context_factory(viewport=PHONE, locale=locale, device_scale_factor=1)
    page: Any = await context.new_page()
    await login(page, email)
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        response = await page.goto(path)
        assert response is not None and response.status == 200
        await page.locator("main h1").first.wait_for()
        target = shot_dir / f"{name}-{label}.png"
        # The whole page, cut at MAX_HEIGHT so a long work list stays a readable picture.
        full_height = await page.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": viewport["width"], "height": min(full_height, MAX_HEIGHT)}
        await page.screenshot(path=str(target), full_page=True, clip=clip, animations="disabled")
        width, height = png_size(target)
        assert width == viewport["width"], f"{target.name} is {width}px wide"
        assert height >= viewport["height"] // 2
