"""Jinja2 set-up shared by every page route."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

from app.accounts.policy import Principal
from app.common.clock import FALLBACK_ZONE, as_utc, zone_named
from app.config import ROOT_DIR
from app.web import i18n

templates = Jinja2Templates(directory=str(ROOT_DIR / "templates"))
# Templates are part of the release: checking each file's modification time on every
# render is only worth it while someone edits them.
templates.env.auto_reload = os.environ.get("TUKI_ENV") == "development"
templates.env.add_extension("jinja2.ext.i18n")
templates.env.policies["ext.i18n.trimmed"] = True


@functools.cache
def _translation(locale: str, message: str) -> str:
    """A message in one language; catalogues do not change while the process runs."""
    return i18n.catalogue(locale).ugettext(message)


@functools.cache
def _plural_translation(locale: str, singular: str, plural: str, num: int) -> str:
    return i18n.catalogue(locale).ungettext(singular, plural, num)


def _finish(autoescape: bool, text: str, variables: dict[str, Any]) -> str:
    """What Jinja's newstyle gettext does with a translation: mark it safe when the
    template autoescapes, then fill the placeholders, each value escaped.

    The values are escaped up front and put in with ``str`` formatting: the same text as
    ``Markup(text) % variables`` (every placeholder in templates is ``%(name)s``, which a
    test holds), at a fraction of the cost of ``Markup``'s per-value wrapper."""
    if autoescape:
        safe = {name: escape(value) for name, value in variables.items()}
        return Markup(text % safe)  # noqa: S704 -- our catalogue, every value escaped
    return text % variables


@functools.cache
def _constant(locale: str, message: str, autoescape: bool) -> str:
    """A message with no values is the same text on every render: finished once."""
    return _finish(autoescape, _translation(locale, message), {})


# Only the evaluation context (is autoescaping on?) is passed: a function that asks for
# the whole context gets, inside every loop, a fresh copy of all the template's variables.
@pass_eval_context
def _gettext(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
    if not variables:
        return _constant(i18n.get_locale(), message, eval_ctx.autoescape)
    return _finish(eval_ctx.autoescape, _translation(i18n.get_locale(), message), variables)


@pass_eval_context
def _ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    variables.setdefault("num", num)
    text = _plural_translation(i18n.get_locale(), singular, plural, num)
    return _finish(eval_ctx.autoescape, text, variables)


# Newstyle gettext: Jinja fills the placeholders itself and escapes every value it puts in,
# so autoescaping holds inside {% trans %} blocks. The callables read the request's locale
# from a context variable, so concurrent renders in different languages never mix. They
# do what Jinja's own newstyle wrappers do, minus a dynamic call and a catalogue lookup
# per message: translations were a fifth of the work list's render (benchmarks/README.md).
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    _gettext, _ngettext, newstyle=False
)
templates.env.newstyle_gettext = True  # type: ignore[attr-defined]
templates.env.globals["_"] = _gettext
templates.env.filters["translate"] = i18n.translate
templates.env.filters["weekday_date"] = i18n.weekday_date
templates.env.filters["number"] = i18n.format_number

# The reader's time zone for the render under way; like the locale, each request has its own.
_zone: ContextVar[ZoneInfo] = ContextVar("tuki_zone", default=FALLBACK_ZONE)


@contextmanager
def use_zone(zone: ZoneInfo) -> Iterator[None]:
    """Show times in ``zone`` inside the block (a render, a test)."""
    token = _zone.set(zone)
    try:
        yield
    finally:
        _zone.reset(token)


def _date_time(m: datetime) -> str:
    """``%d.%m.%Y %H:%M`` spelled out: the same text at half the cost of ``strftime``, which
    was most of these filters on list pages."""
    return f"{m.day:02}.{m.month:02}.{m.year} {m.hour:02}:{m.minute:02}"


def local(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A stored UTC moment as the reader's wall clock shows it; the markup keeps UTC ISO."""
    if value is None:
        return ""
    m = as_utc(value).astimezone(_zone.get())
    if fmt == "%d.%m.%Y %H:%M":
        return _date_time(m)
    if fmt == "%d.%m.%Y":
        return f"{m.day:02}.{m.month:02}.{m.year}"
    return m.strftime(fmt)


def when(value: datetime | None) -> str:
    """A moment with its weekday, in the reader's zone and language ("Mon 09.03.2026 14:05").

    A filter rather than a function in the context: Jinja calls filters directly, and the
    work list shows two of these per item."""
    if value is None:
        return "—"
    m = as_utc(value).astimezone(_zone.get())
    return f"{i18n.short_weekday(m)} {_date_time(m)}"


def moment(value: datetime) -> Markup:
    """``<time>`` with the UTC instant for machines and :func:`when` for the reader."""
    return Markup(f'<time datetime="{value.isoformat()}">{escape(when(value))}</time>')  # noqa: S704


templates.env.filters["local"] = local
templates.env.filters["when"] = when
templates.env.filters["moment"] = moment


def reader_zone(principal: Principal | None, *, patient_timezone: str | None = None) -> ZoneInfo:
    """Whose clock a page's times follow: a patient's own zone, else their clinic's; staff
    see their clinic's. The names come with the session lookup, so no page spends a query.
    A page that has just changed the patient's zone passes the new name."""
    if principal is None:
        return FALLBACK_ZONE
    if principal.patient_id is None:
        return zone_named(principal.clinic_timezone)
    return zone_named(patient_timezone, principal.own_timezone, principal.clinic_timezone)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    zone: ZoneInfo | None = None,
) -> HTMLResponse:
    """Render a page with the caller and their CSRF token always available to the layout.

    ``zone`` is the reader's time zone (see ``reader_zone``); the ``local`` filter shows
    times in it. Pages that show no times leave it out.
    """
    principal = getattr(request.state, "principal", None)
    locale = i18n.locale_for(request)
    ctx: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else "",
        "errors": {},
        "form": {},
        "locale": locale,
        "zone": str(zone or FALLBACK_ZONE),
        # Loaded by app.web.badges.load_badges (one statement per page for both badges).
        "unread_notifications": getattr(request.state, "unread_notifications", 0),
    }
    clinic = getattr(request.state, "clinic", None)
    if clinic is not None:
        ctx["clinic"] = clinic
    ctx.update(context or {})
    with i18n.use_locale(locale), use_zone(zone or FALLBACK_ZONE):
        return templates.TemplateResponse(request, name, ctx, status_code=status_code)
