"""The browser harness itself: the served app answers and a demo user can log in."""

from __future__ import annotations

from tests.e2e.helpers import login


async def test_admin_logs_in_and_sees_the_clinic(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "admin@demo.tuki.test")
    assert page.url.endswith("/admin")
    assert await page.get_by_role("heading", level=1).count() == 1
