"""The layout's badges (the bell's notifications, unread messages), one statement per page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select

from app.accounts.dependencies import load_principal
from app.accounts.policy import AuthState, scope_params
from app.inbox import service as inbox
from app.reminders import service as reminders


async def load_badges(request: Request) -> None:
    """App-wide dependency: both counts of a logged-in page in one SELECT; nothing for the API.

    Each count is its domain's own statement, read as a column here, so a page spends one
    round trip on the layout instead of one per badge.
    """
    if request.url.path.startswith("/api/"):
        return
    principal = await load_principal(request)
    if principal is None:
        return
    columns: list[Any] = [reminders.UNREAD_COUNT]
    messages = inbox.unread_count_column(principal)
    if messages is not None and principal.auth_state is AuthState.FULL:
        columns.append(messages)
    params = {"user_id": principal.user_id, **scope_params(principal)}
    counts = (await request.state.db.execute(select(*columns), params)).one()
    request.state.unread_notifications = int(counts[0] or 0)
    if len(counts) > 1:
        request.state.unread_messages = int(counts[1] or 0)
