"""The bell's unread count, loaded once per page request for the layout."""

from __future__ import annotations

from fastapi import Request

from app.accounts.dependencies import load_principal
from app.reminders import service


async def load_unread_count(request: Request) -> None:
    """App-wide dependency: one indexed count for logged-in page requests; nothing for the API."""
    if request.url.path.startswith("/api/"):
        return
    principal = await load_principal(request)
    if principal is None:
        return
    request.state.unread_notifications = await service.unread_count(
        request.state.db, principal.user_id
    )
