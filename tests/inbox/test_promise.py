"""The response-promise clock: working days in the clinic's own time zone, weekends skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.common.clock import zone_named
from app.inbox.triage import describe_time_left, response_deadline

HELSINKI = ZoneInfo("Europe/Helsinki")


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sent", "due"),
    [
        # Monday 10:00 -> Wednesday 10:00
        ((2026, 3, 2, 10, 0), (2026, 3, 4, 10, 0)),
        # Thursday 16:30 -> Monday 16:30 (the weekend does not count)
        ((2026, 3, 5, 16, 30), (2026, 3, 9, 16, 30)),
        # Friday 15:00 -> Tuesday 15:00
        ((2026, 3, 6, 15, 0), (2026, 3, 10, 15, 0)),
        # Saturday: the clock starts on Monday 00:00, so the answer is due by the end of Tuesday
        ((2026, 3, 7, 11, 0), (2026, 3, 11, 0, 0)),
        # Sunday just before midnight: the same
        ((2026, 3, 8, 23, 59), (2026, 3, 11, 0, 0)),
    ],
)
def test_two_working_days_skip_the_weekend(sent, due):
    assert response_deadline(local(HELSINKI, *sent), 2, HELSINKI) == local(HELSINKI, *due)


def test_the_weekend_is_the_clinics_weekend_not_utcs():
    # Friday 23:30 in UTC is already Saturday 01:30 in Helsinki: a weekend message there.
    sent = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)
    assert response_deadline(sent, 2, HELSINKI) == local(HELSINKI, 2026, 3, 11, 0, 0)
    # The same instant for a clinic in New York is Friday 18:30: due Tuesday 18:30 there.
    new_york = ZoneInfo("America/New_York")
    assert response_deadline(sent, 2, new_york) == local(new_york, 2026, 3, 10, 18, 30)


def test_wall_clock_time_is_kept_across_a_clock_change():
    # Helsinki moves to summer time on Sunday 29 March 2026; Friday 09:00 + 2 is Tuesday 09:00.
    sent = local(HELSINKI, 2026, 3, 27, 9, 0)
    due = response_deadline(sent, 2, HELSINKI)
    assert due.astimezone(HELSINKI).hour == 9
    assert due == datetime(2026, 3, 31, 6, 0, tzinfo=UTC)  # UTC+3 after the change


def test_more_working_days_and_the_result_is_utc():
    due = response_deadline(local(HELSINKI, 2026, 3, 2, 10, 0), 5, HELSINKI)
    assert due == local(HELSINKI, 2026, 3, 9, 10, 0)
    assert due.tzinfo == UTC


def test_an_unknown_zone_falls_back_to_utc():
    assert zone_named("Not/AZone") == ZoneInfo("UTC")
    assert zone_named(None) == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30 * 60, "Less than an hour left"),
        (5 * 3600 + 59, "5 h left"),
        (47 * 3600, "47 h left"),
        (4 * 86400, "4 days left"),
        (-2 * 3600, "Overdue by 2 h"),
        (-3 * 86400, "Overdue by 3 days"),
    ],
)
def test_time_left_in_plain_words(seconds, text):
    assert describe_time_left(seconds) == text
