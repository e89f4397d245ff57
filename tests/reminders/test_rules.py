"""Local-time rules as pure functions: quiet hours, weekdays, program time, DST in Helsinki."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from app.reminders import render
from app.reminders.rules import (
    ALL_WEEKDAYS,
    Rule,
    SendWindow,
    place,
    program_time_occurrence,
    quiet_until,
    zone,
)
from app.web.i18n import gettext, use_locale

HELSINKI = zone("Europe/Helsinki")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


OVERNIGHT = SendWindow(quiet_start=time(22, 0), quiet_end=time(7, 0))
LUNCH = SendWindow(quiet_start=time(12, 0), quiet_end=time(13, 0))


class TestQuietHours:
    @pytest.mark.parametrize(
        ("moment", "expected"),
        [
            (utc(2026, 3, 4, 19, 59), None),  # 21:59 local
            (utc(2026, 3, 4, 20, 0), utc(2026, 3, 5, 5, 0)),  # 22:00 -> next day 07:00
            (utc(2026, 3, 4, 23, 30), utc(2026, 3, 5, 5, 0)),  # 01:30 -> same day 07:00
            (utc(2026, 3, 5, 4, 59), utc(2026, 3, 5, 5, 0)),  # 06:59 -> 07:00
            (utc(2026, 3, 5, 5, 0), None),  # 07:00 is no longer quiet
        ],
    )
    def test_crossing_midnight(self, moment, expected):
        assert quiet_until(moment, OVERNIGHT, HELSINKI) == expected

    def test_within_one_day(self):
        assert quiet_until(utc(2026, 3, 4, 10, 30), LUNCH, HELSINKI) == utc(2026, 3, 4, 11, 0)
        assert quiet_until(utc(2026, 3, 4, 11, 0), LUNCH, HELSINKI) is None

    def test_no_quiet_hours(self):
        assert quiet_until(utc(2026, 3, 4, 1, 0), SendWindow(), HELSINKI) is None

    def test_end_of_quiet_period_on_the_night_summer_time_starts(self):
        # Saturday 28 March 23:00 EET; clocks go 03:00 -> 04:00 on Sunday 29 March.
        assert place(utc(2026, 3, 28, 21, 0), OVERNIGHT, HELSINKI) == utc(2026, 3, 29, 4, 0)

    def test_end_of_quiet_period_on_the_night_summer_time_ends(self):
        # Saturday 24 October 23:00 EEST; clocks go 04:00 -> 03:00 on Sunday 25 October.
        assert place(utc(2026, 10, 24, 20, 0), OVERNIGHT, HELSINKI) == utc(2026, 10, 25, 5, 0)

    def test_a_quiet_end_inside_the_spring_gap_moves_later(self):
        window = SendWindow(quiet_start=time(1, 0), quiet_end=time(3, 30))
        placed = place(utc(2026, 3, 28, 23, 30), window, HELSINKI)  # 01:30 EET
        assert placed == utc(2026, 3, 29, 1, 30)  # 03:30 does not exist: 04:30 EEST
        assert placed.astimezone(HELSINKI).hour == 4


class TestPlace:
    def test_outside_the_window_is_unchanged(self):
        moment = utc(2026, 3, 4, 10, 0)
        assert place(moment, OVERNIGHT, HELSINKI) == moment

    def test_disallowed_day_moves_to_next_allowed_day_same_wall_time(self):
        weekdays = SendWindow(weekdays=frozenset({0, 2}))  # Monday, Wednesday
        # Tuesday 3 March 12:00 local -> Wednesday 12:00 local.
        assert place(utc(2026, 3, 3, 10, 0), weekdays, HELSINKI) == utc(2026, 3, 4, 10, 0)
        # Thursday -> next Monday.
        assert place(utc(2026, 3, 5, 10, 0), weekdays, HELSINKI) == utc(2026, 3, 9, 10, 0)

    def test_days_and_quiet_hours_together(self):
        window = SendWindow(
            weekdays=frozenset({0, 1, 2, 3, 4}), quiet_start=time(21, 0), quiet_end=time(9, 0)
        )
        # Friday 23:00 local: quiet until Saturday 09:00, a day off, so Monday 09:00.
        assert place(utc(2026, 3, 6, 21, 0), window, HELSINKI) == utc(2026, 3, 9, 7, 0)

    def test_never_moves_earlier(self):
        for hours in range(0, 24 * 8, 5):
            moment = utc(2026, 3, 25) + timedelta(hours=hours)
            window = SendWindow(
                weekdays=frozenset({1, 5}), quiet_start=time(20, 0), quiet_end=time(10, 0)
            )
            placed = place(moment, window, HELSINKI)
            local = placed.astimezone(HELSINKI)
            assert placed >= moment
            assert local.weekday() in {1, 5}
            assert time(10, 0) <= local.time() < time(20, 0) or placed == moment

    def test_unknown_zone_falls_back_to_utc(self):
        assert zone("Mars/Olympus") == zone("UTC")
        assert frozenset(range(7)) == ALL_WEEKDAYS


class TestProgramTime:
    def test_follows_local_time_across_dst(self):
        sunday_six = (6, time(18, 0))
        assert program_time_occurrence(utc(2026, 3, 23, 0, 0), *sunday_six, HELSINKI) == utc(
            2026, 3, 29, 15, 0
        )  # EEST
        assert program_time_occurrence(utc(2026, 3, 20, 0, 0), *sunday_six, HELSINKI) == utc(
            2026, 3, 22, 16, 0
        )  # EET

    def test_the_local_week_is_monday_to_sunday(self):
        # Sunday 23:30 UTC is already Monday 01:30 in Helsinki: that is next week.
        monday_nine = (0, time(9, 0))
        assert program_time_occurrence(utc(2026, 3, 8, 23, 30), *monday_nine, HELSINKI) == utc(
            2026, 3, 9, 7, 0
        )


class TestTexts:
    @pytest.mark.parametrize("rule", list(Rule))
    @pytest.mark.parametrize("audience", ["patient", "staff"])
    def test_every_text_is_neutral(self, rule, audience):
        rendered = render.render(rule.value, audience, "https://tuki.example/r/abc")
        assert "https://tuki.example/r/abc" in rendered.text
        assert "Tuki" in rendered.text and rendered.line in rendered.text
        if audience == "patient":
            assert rendered.line in (render.PATIENT_LINE, render.PROGRAM_TIME_LINE)

    @pytest.mark.parametrize("rule", list(Rule))
    @pytest.mark.parametrize("audience", ["patient", "staff"])
    def test_every_text_in_the_recipients_language(self, rule, audience):
        """Each part of an e-mail or SMS is its catalogue entry in the chosen language; an
        unknown or missing choice falls back to English."""
        link = "https://tuki.example/r/abc"
        english = render.render(rule.value, audience, link)
        finnish = render.render(rule.value, audience, link, locale="fi")
        with use_locale("fi"):
            assert finnish.line == gettext(render.line_for(rule.value, audience))
            assert finnish.subject == gettext(render.SUBJECT) != english.subject
        assert finnish.text.startswith("Hei,\n\n" + finnish.line)
        assert f"Avaa Tuki: {link}" in finnish.text
        assert finnish.line != english.line and english.line not in finnish.text
        assert render.sms_text(finnish, link) == f"{finnish.line} {link}"
        assert render.render(rule.value, audience, link, locale="sv") == english
        assert render.render(rule.value, audience, link, locale=None) == english
