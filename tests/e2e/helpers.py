"""Steps the browser journeys share."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "tuki-demo-2026"


async def login(page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
    await page.goto("/login")
    await page.locator("#f-email").fill(email)
    await page.locator("#f-password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_load_state()
    assert "/login" not in page.url, await page.inner_text("main")
