"""The message catalogues: complete in both languages, consistent, and up to date with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app.config import ROOT_DIR
from app.web import i18n

POT = i18n.TRANSLATIONS_DIR / "messages.pot"
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _ids(catalog: Catalog) -> set[object]:
    return {message.id for message in catalog if message.id}


def _po(locale: str) -> Path:
    return i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    template = _read(POT)
    catalogue = _read(_po(locale), locale)
    assert _ids(template), "the template lists no messages"
    assert _ids(catalogue) == _ids(template), "the catalogue and the template list other messages"
    for message in catalogue:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings), f"{locale}: no translation for {message.id!r}"
        assert not message.fuzzy, f"{locale}: {message.id!r} is marked fuzzy"


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_translations_keep_every_placeholder(locale: str) -> None:
    """A missing or misspelt ``%(name)s`` would raise or lose a value at render time."""
    catalogue = _read(_po(locale), locale)
    assert not [(m.id, errors) for m, errors in catalogue.check()]
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            found = set(PLACEHOLDER.findall(string))
            # A singular form may leave out the count ("one day" rather than "1 day").
            assert found <= wanted and wanted - found <= {"%(count)s", "%(num)s"}, message.id


def test_english_catalogue_is_the_source_text() -> None:
    for message in _read(_po("en"), "en"):
        if message.id:
            assert message.string == message.id


def test_template_is_up_to_date_with_the_code(tmp_path: Path) -> None:
    """Extract again from app/ and templates/: the stored template must list the same messages."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT_DIR / "babel.cfg"),
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT_DIR,
        check=True,
        capture_output=True,
    )
    stored, extracted = _ids(_read(POT)), _ids(_read(fresh))
    assert not extracted - stored, f"new messages missing from messages.pot: {extracted - stored}"
    assert not stored - extracted, (
        f"messages.pot lists messages no longer used: {stored - extracted}"
    )


def test_finnish_catalogue_is_really_finnish() -> None:
    with i18n.use_locale("fi"):
        assert i18n.gettext("Log in") == "Kirjaudu sisään"
        assert i18n.gettext("Save draft") == "Tallenna luonnos"
        assert i18n.gettext("Messages") == "Viestit"
        assert i18n.ngettext("%(num)s day", "%(num)s days", 1) == "1 päivä"
        assert i18n.ngettext("%(num)s day", "%(num)s days", 4) == "4 päivää"
    with i18n.use_locale("en"):
        assert i18n.gettext("Log in") == "Log in"
        assert i18n.ngettext("%(num)s day", "%(num)s days", 4) == "4 days"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fi", "fi"),
        ("fi-FI,fi;q=0.9,en-US;q=0.8,en;q=0.7", "fi"),
        ("en-GB,en;q=0.9,fi;q=0.8", "en"),
        ("sv-FI,sv;q=0.9,fi;q=0.5", "fi"),
        ("de-DE", None),
        ("fi;q=0, en;q=0.5", "en"),
        ("*", None),
        ("", None),
        (None, None),
        ("fi;q=banana", None),
    ],
)
def test_browser_language_is_negotiated(header: str | None, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_weekday_dates_follow_the_language() -> None:
    day = date(2026, 3, 9)
    with i18n.use_locale("fi"):
        assert i18n.weekday_date(day) == "maanantai 09.03.2026"
    with i18n.use_locale("en"):
        assert i18n.weekday_date(day) == "Monday 09.03.2026"


@pytest.mark.parametrize("locale", ["fi", "en"])
def test_cached_weekday_names_agree_with_babel_on_every_day(locale: str) -> None:
    for offset in range(7):
        day = datetime(2026, 3, 9, 23, 30, tzinfo=UTC) + timedelta(days=offset)
        with i18n.use_locale(locale):
            assert i18n.weekday_date(day) == format_date(day, "cccc dd.MM.yyyy", locale=locale)
            assert i18n.short_weekday(day) == format_date(day, "ccc", locale=locale)


def test_unknown_locale_falls_back_to_english() -> None:
    with i18n.use_locale("xx"):
        assert i18n.get_locale() == "en"
    assert i18n.get_locale() == i18n.DEFAULT_LOCALE


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_every_percent_sign_is_a_named_string_placeholder(locale: str) -> None:
    """The page renderer fills translations with plain ``%`` formatting of escaped values,
    which gives the same text as ``Markup % values`` only for ``%(name)s`` and ``%%``.
    (A label such as "Mean sleep efficiency (%)" is never formatted; Babel does not flag it.)"""
    formatted = [m for m in _read(_po(locale), locale) if m.id and "python-format" in m.flags]
    assert len(formatted) > 50
    for message in formatted:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in (*ids, *strings):
            leftover = re.sub(r"%\(\w+\)s|%%", "", text or "")
            assert "%" not in leftover, (locale, message.id)


@pytest.mark.parametrize("autoescape", [True, False])
def test_translations_fill_like_jinja_newstyle_gettext(autoescape: bool) -> None:
    from markupsafe import Markup

    from app.templating import templates

    env = templates.env.overlay(autoescape=autoescape)
    template = env.from_string(
        "{% trans name=name, count=count, when=when %}{{ name }} sent {{ count }} at {{ when }}"
        "{% endtrans %} | {% trans %}100% sure{% endtrans %} | {{ _('Log in') }}"
    )
    html = template.render(name="<b>Mari</b>", count=3, when=Markup("<time>Mon</time>"))
    name = "&lt;b&gt;Mari&lt;/b&gt;" if autoescape else "<b>Mari</b>"
    assert html == f"{name} sent 3 at <time>Mon</time> | 100% sure | Log in"
