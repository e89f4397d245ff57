"""What each reminder rule means, the clinic-configurable thresholds, and the local-time rules.

Rules for patients (one nudge per rule and period; all texts are health-free):

- ``new_module``: a module became available — the therapist opened it
  (``module_progress.unlocked_at``) or pacing opened it on a date (previous module
  completed + minimum days, no therapist gate) — and the patient has not been active
  since. Fires ``new_module_delay_minutes`` after it opened, at most a week later.
- ``inactivity``: no patient activity for ``inactivity_days_1/2/3`` days (3, 7, 14), once
  per step per lapse; a lapse starts at the last activity. Only the step whose window
  contains "now" fires, so a planner that was down never sends two steps at once.
- ``dropout_alert`` (for the therapist): at the last inactivity step a risk alert
  (source ``inactivity``, level ``warning``) is raised instead of any further nudging:
  from then on no rule nudges the patient until they are active again.
- ``questionnaire_due``: in a treatment week the patient has answered no questionnaire
  (or has never answered the baseline), ``questionnaire_after_hours`` into the week.
  Programs without weekly instruments only ask for the baseline.
- ``unread_message``: a therapist's message unread for ``unread_message_hours``.
- ``program_time``: the weekly time the patient chose ("Mondays 18:00"), in their zone.

Rules for therapists: ``response_due`` (a patient message about to pass the clinic's
response promise) and ``feedback_overdue`` (submitted work without feedback).

A cap of ``max_nudges_per_lapse`` patient nudges per lapse, pause, quiet hours, weekdays
and the enrollment's status are applied on top of every rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select

from app.config import Settings


class Rule(enum.StrEnum):
    NEW_MODULE = "new_module"
    INACTIVITY = "inactivity"
    QUESTIONNAIRE_DUE = "questionnaire_due"
    UNREAD_MESSAGE = "unread_message"
    PROGRAM_TIME = "program_time"
    DROPOUT_ALERT = "dropout_alert"
    RESPONSE_DUE = "response_due"
    FEEDBACK_OVERDUE = "feedback_overdue"


PATIENT_RULES = (
    Rule.NEW_MODULE,
    Rule.INACTIVITY,
    Rule.QUESTIONNAIRE_DUE,
    Rule.UNREAD_MESSAGE,
    Rule.PROGRAM_TIME,
)
STAFF_RULES = (Rule.DROPOUT_ALERT, Rule.RESPONSE_DUE, Rule.FEEDBACK_OVERDUE)

RULE_LABELS = {
    Rule.NEW_MODULE: "New module available",
    Rule.INACTIVITY: "Inactivity nudge",
    Rule.QUESTIONNAIRE_DUE: "Questionnaire due",
    Rule.UNREAD_MESSAGE: "Unread therapist message",
    Rule.PROGRAM_TIME: "Weekly program time",
    Rule.DROPOUT_ALERT: "Dropout alert to therapist",
    Rule.RESPONSE_DUE: "Reply due (therapist)",
    Rule.FEEDBACK_OVERDUE: "Feedback overdue (therapist)",
}

CHANNELS = ("in_app", "email", "sms")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_WEEKDAYS = frozenset(range(7))

# How long after its moment a rule may still fire, so a planner that was down for a while
# does not dig up stale occasions.
NEW_MODULE_LOOKBACK = timedelta(days=7)
PROGRAM_TIME_WINDOW = timedelta(hours=12)


@dataclass(frozen=True)
class RuleConfig:
    """The thresholds in force for one clinic (its own row, or the defaults from settings)."""

    inactivity_enabled: bool
    inactivity_days_1: int
    inactivity_days_2: int
    inactivity_days_3: int
    dropout_alert_enabled: bool
    max_nudges_per_lapse: int
    new_module_enabled: bool
    new_module_delay_minutes: int
    questionnaire_enabled: bool
    questionnaire_after_hours: int
    unread_message_enabled: bool
    unread_message_hours: int
    program_time_enabled: bool
    staff_reminders_enabled: bool
    response_promise_hours: int
    response_warning_hours: int
    feedback_overdue_days: int

    @classmethod
    def defaults(cls, settings: Settings) -> RuleConfig:
        first, second, third = settings.reminder_inactivity_days
        return cls(
            inactivity_enabled=True,
            inactivity_days_1=first,
            inactivity_days_2=second,
            inactivity_days_3=third,
            dropout_alert_enabled=True,
            max_nudges_per_lapse=settings.reminder_max_nudges_per_lapse,
            new_module_enabled=True,
            new_module_delay_minutes=settings.reminder_new_module_delay_minutes,
            questionnaire_enabled=True,
            questionnaire_after_hours=settings.reminder_questionnaire_after_hours,
            unread_message_enabled=True,
            unread_message_hours=settings.reminder_unread_message_hours,
            program_time_enabled=True,
            staff_reminders_enabled=True,
            response_promise_hours=settings.reminder_response_promise_hours,
            response_warning_hours=settings.reminder_response_warning_hours,
            feedback_overdue_days=settings.reminder_feedback_overdue_days,
        )

    @classmethod
    def from_row(cls, row: Any) -> RuleConfig:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# Inbox boundary ------------------------------------------------------------------------------
#
# The three item rules read the inbox through its query functions: each returns a SELECT of
# rows ``(enrollment_id, item_id, at)`` and the planner turns every row into a reminder once
# its moment has come. Nothing else in the reminders package knows the inbox's tables.


def unread_staff_messages() -> Select[int, int, datetime]:
    """Staff messages the patient has not read; the reminder fires ``unread_message_hours`` later."""
    from app.inbox import queries

    return queries.unread_staff_messages()


def unanswered_patient_messages() -> Select[int, int, datetime]:
    """Patient messages without a staff reply; the therapist is reminded before the promise ends."""
    from app.inbox import queries

    return queries.unanswered_patient_messages()


def submissions_awaiting_feedback() -> Select[int, int, datetime | None]:
    """Submitted exercises without therapist feedback; reminded after ``feedback_overdue_days``."""
    from app.inbox import queries

    return queries.submissions_awaiting_feedback()


# Local time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendWindow:
    """When a patient may be reminded, in their own wall-clock time."""

    weekdays: frozenset[int] = ALL_WEEKDAYS
    quiet_start: time | None = None
    quiet_end: time | None = None


def zone(name: str | None) -> ZoneInfo:
    """The patient's zone; an unknown name falls back to UTC rather than failing a sweep."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def at_local(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a local day, in UTC. In a spring-forward gap the time moves later."""
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def quiet_until(moment: datetime, window: SendWindow, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet period containing ``moment``, or None if it is not quiet.

    A period whose end is before its start crosses midnight (22:00 to 07:00).
    """
    start, end = window.quiet_start, window.quiet_end
    if start is None or end is None or start == end:
        return None
    local = moment.astimezone(tz)
    wall = local.time()
    if start < end:
        return at_local(local.date(), end, tz) if start <= wall < end else None
    if wall >= start:
        return at_local(local.date() + timedelta(days=1), end, tz)
    if wall < end:
        return at_local(local.date(), end, tz)
    return None


def place(nominal: datetime, window: SendWindow, tz: ZoneInfo) -> datetime:
    """The first moment at or after ``nominal`` on an allowed weekday and outside quiet hours.

    A disallowed day moves the reminder to the next allowed day at the same wall-clock
    time; a quiet period moves it to the period's end. Wall-clock arithmetic goes through
    zoneinfo, so the night the clocks change is handled like any other.
    """
    weekdays = window.weekdays or ALL_WEEKDAYS
    candidate = nominal
    for _ in range(32):
        local = candidate.astimezone(tz)
        if local.weekday() not in weekdays:
            skip = next(d for d in range(1, 8) if (local.weekday() + d) % 7 in weekdays)
            candidate = max(
                candidate, at_local(local.date() + timedelta(days=skip), local.time(), tz)
            )
            continue
        quiet_end = quiet_until(candidate, window, tz)
        if quiet_end is None:
            return candidate
        candidate = max(candidate, quiet_end)
    return candidate


def program_time_occurrence(now: datetime, weekday: int, wall: time, tz: ZoneInfo) -> datetime:
    """This local week's (Monday to Sunday) occurrence of the patient's program time, in UTC."""
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=local.weekday()) + timedelta(days=weekday)
    return at_local(day, wall, tz)
