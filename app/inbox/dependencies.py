"""The Messages badge: how many messages wait to be opened, once per page request."""

from __future__ import annotations

from fastapi import Request

from app.accounts.dependencies import load_principal
from app.accounts.models import Role
from app.accounts.policy import AuthState
from app.inbox import service


async def load_unread_messages(request: Request) -> None:
    """App-wide dependency: one indexed count for patients' and therapists' pages, none for the API."""
    if request.url.path.startswith("/api/"):
        return
    principal = await load_principal(request)
    if (
        principal is None
        or principal.auth_state is not AuthState.FULL
        or principal.role not in (Role.PATIENT, Role.THERAPIST)
    ):
        return
    request.state.unread_messages = await service.unread_count(request.state.db, principal)
