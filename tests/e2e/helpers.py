"""Steps the browser journeys share."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "tuki-demo-2026"


async def login(page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
    await page.goto("/login")
    await page.locator("#f-email").fill(email)
    await page.locator("#f-password").fill(password)
    # Enter submits in any interface language (the button's name is translated).
    async with page.expect_navigation():
        await page.locator("#f-password").press("Enter")
    assert "/login" not in page.url, await page.inner_text("main")
