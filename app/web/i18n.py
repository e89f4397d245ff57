"""Interface language: message catalogues, the request's locale, and translation helpers.

The interface speaks English or Finnish. The language comes from the signed-in user's
profile, then from the browser's ``Accept-Language`` header, then the default (English).
Module content and questionnaire items are not translated here: they stay in the language
they were written in.

The locale lives in a context variable, so concurrent requests never see each other's
language: each request (an asyncio task) has its own copy. Catalogues are compiled from the
``.po`` files into memory on first use, so a fresh checkout needs no build step.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from fastapi import Request

from app.accounts.dependencies import load_principal
from app.accounts.models import User
from app.common.messages import N_ as N_
from app.common.messages import Deferred

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "fi")
DEFAULT_LOCALE = "en"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "fi": "Suomi"}

_locale: ContextVar[str] = ContextVar("tuki_locale", default=DEFAULT_LOCALE)


# Messages written outside app/*/pages.py (app.main, the guards, the account service) that
# pages show through ``translate``.
ERROR_PAGE_MESSAGES = (
    N_("Not found."),
    N_("The request could not be processed."),
    N_("Some of the information sent was not valid."),
    N_("Something went wrong on our side. Nothing you typed was saved twice; please try again."),
    N_("This request came from another site and was refused."),
    N_("Your form has expired or was not sent from this site. Reload the page and try again."),
    N_("You do not have access to this page."),
    N_("Method Not Allowed"),
    N_("The service is briefly unavailable and nothing was saved. Please try again in a moment."),
    N_("Please log in."),
    N_("User not found."),
    # Accounts: shown on the login, invitation, password and two-factor pages.
    N_("The e-mail address or password is not correct."),
    N_("This account is no longer active. Please contact your clinic."),
    N_("A newer invitation has been sent to you; please use the latest link."),
    N_("This invitation has already been used. Log in with your e-mail and password."),
    N_("This invitation has already been used."),
    N_("This invitation has expired. Ask your clinic to send a new one."),
    N_("This invitation link is not valid. Check that you copied the whole link."),
    N_("Your current password is not correct."),
    N_("Start the two-factor set-up first."),
    N_("That code did not match. Check the time on your phone and try again."),
    N_("This password is too common or too easy to guess; choose another."),
    N_("Do not use your name or e-mail address in the password."),
    N_("Field required"),
)

# Labels defined by other modules in English and shown through the ``translate`` filter.
INTERFACE_LABELS = (
    # Enrollment statuses (capitalised in the templates).
    N_("Invited"),
    N_("Active"),
    N_("Paused"),
    N_("Completed"),
    N_("Dropped"),
    N_("Closed"),
    N_("invited"),
    N_("active"),
    N_("paused"),
    N_("completed"),
    N_("dropped"),
    N_("closed"),
    # Adherence statuses (app.adherence.status) and the therapist-time norm.
    N_("On track"),
    N_("Falling behind"),
    N_("Inactive"),
    N_("Dropped out"),
    N_("below"),
    N_("within"),
    N_("above"),
    N_("Program"),
    N_("Therapist"),
    # Support functions of messages (app.inbox.snippets).
    N_("Autonomy"),
    N_("Alliance"),
    N_("Emotion regulation"),
    N_("autonomy"),
    N_("alliance"),
    N_("emotion regulation"),
    N_("Choices, own pace, own goals"),
    N_("Being there, remembering, naming effort"),
    N_("Normalising setbacks, calming, a kinder view"),
    # Reminder rules (app.reminders.rules), channels and delivery states.
    N_("New module available"),
    N_("Inactivity nudge"),
    N_("Questionnaire due"),
    N_("Unread therapist message"),
    N_("Weekly program time"),
    N_("Dropout alert to therapist"),
    N_("Reply due (therapist)"),
    N_("Feedback overdue (therapist)"),
    N_("pending"),
    N_("sending"),
    N_("sent"),
    N_("failed"),
    N_("cancelled"),
    N_("opened"),
    # The patient's access log (app.audit.router).
    N_("Clinic administrator"),
    N_("read"),
    N_("update"),
    N_("create"),
    N_("list"),
    N_("export"),
    N_("acknowledge"),
    N_("delete"),
    N_("disclose"),
    N_("enrollment"),
    N_("exercise response"),
    N_("questionnaire response"),
    N_("module"),
    N_("module path"),
    N_("message"),
    N_("message thread"),
    N_("risk alert"),
    N_("patient work"),
    N_("patient data"),
    N_("tailoring change"),
    N_("reminder preference"),
    N_("adherence"),
    N_("fhir bundle"),
)


@functools.cache
def catalogue(locale: str) -> Translations:
    """One language's compiled messages, read from its ``.po`` file once per process."""
    path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        messages = read_po(source, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def get_locale() -> str:
    return _locale.get()


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Speak ``locale`` inside the block (a render, a test); the previous one comes back after."""
    token = _locale.set(locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _locale.reset(token)


def gettext(message: str, /, **variables: object) -> str:
    """``message`` in the current language, with ``%(name)s`` placeholders filled in."""
    translated = catalogue(get_locale()).ugettext(message)
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, num: int, /, **variables: object) -> str:
    """The singular or plural form the current language needs for ``num``; ``%(num)s`` works."""
    translated = catalogue(get_locale()).ungettext(singular, plural, num)
    return translated % {"num": num, **variables}


def translate(message: str) -> str:
    """A message decided elsewhere (an error page's text): translated when the catalogue knows it."""
    if isinstance(message, Deferred):
        return gettext(message.msgid, **message.params)
    return catalogue(get_locale()).ugettext(message) if message else message


def _accepted(header: str) -> list[str]:
    """Language tags from ``Accept-Language``, most preferred first; q=0 means "not this"."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _q, _i, tag in sorted(weighted)]


def negotiate(header: str | None) -> str | None:
    """The best of our languages for a browser's ``Accept-Language`` header, if any fits."""
    if not header:
        return None
    preferred = _accepted(header)
    try:
        found = Locale.negotiate(preferred, list(SUPPORTED_LOCALES), sep="-")
    except (UnknownLocaleError, ValueError):
        return None
    return found.language if found is not None and found.language in SUPPORTED_LOCALES else None


def locale_for(request: Request) -> str:
    """The locale already chosen for this request, or the browser's; the default otherwise."""
    chosen = getattr(request.state, "locale", None)
    if isinstance(chosen, str):
        return chosen
    return negotiate(request.headers.get("accept-language")) or DEFAULT_LOCALE


async def resolve_locale(request: Request) -> None:
    """Choose the request's language once: the user's profile, then the browser, then the
    clinic's language, then English.

    The user row is already in the request's session (the principal was loaded from it),
    so reading its language costs no query; the clinic's comes with the session lookup.
    """
    principal = await load_principal(request)
    locale: str | None = None
    if principal is not None:
        user = await request.state.db.get(User, principal.user_id)
        language = user.language if user is not None else None
        if language in SUPPORTED_LOCALES:
            locale = language
    if locale is None:
        locale = negotiate(request.headers.get("accept-language"))
    if locale is None and principal is not None and principal.clinic_language in SUPPORTED_LOCALES:
        locale = principal.clinic_language
    if locale is None:
        locale = DEFAULT_LOCALE
    request.state.locale = locale
    # Each request runs in its own task, so this value ends with the request.
    _locale.set(locale)


@functools.cache
def _weekday_names(locale: str, width: str) -> tuple[str, ...]:
    """Monday to Sunday as a stand-alone name (``ccc``/``cccc``), looked up once per
    language: formatting each date through Babel was a sixth of the work list's render."""
    monday = date(2024, 1, 1)
    pattern = "cccc" if width == "wide" else "ccc"
    return tuple(
        format_date(date.fromordinal(monday.toordinal() + n), pattern, locale=locale)
        for n in range(7)
    )


def weekday_date(value: date | datetime) -> str:
    """A day with its weekday name in the reader's language, e.g. "maanantai 09.03.2026"."""
    return f"{_weekday_names(get_locale(), 'wide')[value.weekday()]} {value:%d.%m.%Y}"


def short_weekday(value: date | datetime) -> str:
    """The abbreviated weekday name in the reader's language ("Mon", "ma")."""
    return _weekday_names(get_locale(), "abbreviated")[value.weekday()]


def format_number(value: float) -> str:
    """A number as the reader writes it: 5,000 in English, 5 000 in Finnish."""
    return format_decimal(value, locale=get_locale())
