"""Jinja2 set-up shared by every page route."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import ROOT_DIR
from app.web import i18n

templates = Jinja2Templates(directory=str(ROOT_DIR / "templates"))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.policies["ext.i18n.trimmed"] = True


def _template_gettext(message: str) -> str:
    return i18n.catalogue(i18n.get_locale()).ugettext(message)


def _template_ngettext(singular: str, plural: str, num: int) -> str:
    return i18n.catalogue(i18n.get_locale()).ungettext(singular, plural, num)


# Newstyle gettext: Jinja fills the placeholders itself and escapes every value it puts in,
# so autoescaping holds inside {% trans %} blocks. The callables read the request's locale
# from a context variable, so concurrent renders in different languages never mix.
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    _template_gettext, _template_ngettext, newstyle=True
)
templates.env.filters["translate"] = i18n.translate
templates.env.filters["weekday_date"] = i18n.weekday_date
templates.env.filters["number"] = i18n.format_number


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the caller and their CSRF token always available to the layout."""
    principal = getattr(request.state, "principal", None)
    locale = i18n.locale_for(request)
    ctx: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else "",
        "errors": {},
        "form": {},
        "locale": locale,
        # Loaded by app.reminders.dependencies.load_unread_count (one query per page).
        "unread_notifications": getattr(request.state, "unread_notifications", 0),
    }
    clinic = getattr(request.state, "clinic", None)
    if clinic is not None:
        ctx["clinic"] = clinic
    ctx.update(context or {})
    with i18n.use_locale(locale):
        return templates.TemplateResponse(request, name, ctx, status_code=status_code)
