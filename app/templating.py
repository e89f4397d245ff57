"""Jinja2 set-up shared by every page route."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import ROOT_DIR

templates = Jinja2Templates(directory=str(ROOT_DIR / "templates"))


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the caller and their CSRF token always available to the layout."""
    principal = getattr(request.state, "principal", None)
    ctx: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else "",
        "errors": {},
        "form": {},
        # Loaded by app.reminders.dependencies.load_unread_count (one query per page).
        "unread_notifications": getattr(request.state, "unread_notifications", 0),
    }
    clinic = getattr(request.state, "clinic", None)
    if clinic is not None:
        ctx["clinic"] = clinic
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
