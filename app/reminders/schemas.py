"""Request and response shapes for reminder preferences, clinic rules, reminders and notifications."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)

Channel = Literal["in_app", "email", "sms"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PHONE_PATTERN = r"^\+?[0-9 ()-]{5,31}$"
QUIET_PAIR = "give both the start and the end of the quiet hours, or neither"
QUIET_SAME = "quiet hours must start and end at different times"
PROGRAM_PAIR = "give both the day and the time of your program time, or neither"

# A local wall-clock time (the patient's own zone applies). JSON Schema's ``time`` format
# demands a UTC offset, which these times must not have, so the document says what they are.
WallTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "Local time, HH:MM or HH:MM:SS, without a time zone",
        }
    ),
]


class StrictModel(BaseModel):
    """Unknown fields are refused, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _wall_time(value: time | None) -> time | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        raise ValueError("give a local time such as 22:00, without a time zone")
    return value.replace(second=0, microsecond=0)


def _default_channels() -> list[Channel]:
    return ["in_app", "email"]


def _all_weekdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class PreferencesUpdate(StrictModel):
    """The patient's choices; the whole set is replaced (PUT)."""

    channels: list[Channel] = Field(default_factory=_default_channels, max_length=3)
    weekdays: list[Weekday] = Field(default_factory=_all_weekdays, min_length=1, max_length=7)
    quiet_hours_start: WallTime | None = None
    quiet_hours_end: WallTime | None = None
    paused_until: AwareDatetime | None = None
    program_weekday: Weekday | None = None
    program_time: WallTime | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=PHONE_PATTERN)

    _times = field_validator("quiet_hours_start", "quiet_hours_end", "program_time")(_wall_time)

    @field_validator("channels", "weekdays")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _pairs(self) -> PreferencesUpdate:
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValueError(QUIET_PAIR)
        if self.quiet_hours_start is not None and self.quiet_hours_start == self.quiet_hours_end:
            raise ValueError(QUIET_SAME)
        if (self.program_weekday is None) != (self.program_time is None):
            raise ValueError(PROGRAM_PAIR)
        return self


class PreferencesRead(BaseModel):
    enrollment_id: int
    channels: list[str]
    weekdays: list[str]
    quiet_hours_start: WallTime | None
    quiet_hours_end: WallTime | None
    paused_until: datetime | None
    program_weekday: str | None
    program_time: WallTime | None
    phone: str | None
    timezone: str
    sms_available: bool
    is_default: bool


class RuleConfigUpdate(StrictModel):
    """A clinic's reminder rules; every field is required so nothing changes by accident."""

    inactivity_enabled: StrictBool
    inactivity_days: list[Annotated[int, Field(ge=1, le=180)]] = Field(min_length=3, max_length=3)
    dropout_alert_enabled: StrictBool
    max_nudges_per_lapse: int = Field(ge=1, le=20)
    new_module_enabled: StrictBool
    new_module_delay_minutes: int = Field(ge=0, le=1440)
    questionnaire_enabled: StrictBool
    questionnaire_after_hours: int = Field(ge=0, le=144)
    unread_message_enabled: StrictBool
    unread_message_hours: int = Field(ge=1, le=336)
    program_time_enabled: StrictBool
    staff_reminders_enabled: StrictBool
    response_promise_hours: int = Field(ge=1, le=336)
    response_warning_hours: int = Field(ge=0, le=336)
    feedback_overdue_days: int = Field(ge=1, le=60)

    @field_validator("inactivity_days")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 180 for d in value):
            raise ValueError("each step is between 1 and 180 days")
        if not value[0] < value[1] < value[2]:
            raise ValueError("the three steps must grow, such as 3, 7 and 14 days")
        return value

    @model_validator(mode="after")
    def _warning_before_promise(self) -> RuleConfigUpdate:
        if self.response_warning_hours >= self.response_promise_hours:
            raise ValueError("the reply reminder must come before the response promise passes")
        return self


class RuleConfigRead(BaseModel):
    inactivity_enabled: bool
    inactivity_days: list[int]
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
    is_default: bool


class ReminderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str
    audience: str
    channel: str
    status: str
    due_at: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    attempts: int
    last_error: str | None


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    link: str
    created_at: datetime
    read_at: datetime | None


class NotificationList(BaseModel):
    items: list[NotificationRead]
    unread: int


class RuleStats(BaseModel):
    rule: str
    label: str
    planned: int
    pending: int
    sent: int
    failed: int
    cancelled: int
    opened: int
    nudges_sent: int
    followed_by_activity: int
    followed_rate: float | None


class ProgramStats(BaseModel):
    program: str
    title: str
    planned: int
    sent: int
    failed: int
    opened: int


class FailureRead(BaseModel):
    id: int
    rule: str
    channel: str
    enrollment_id: int | None
    attempts: int
    last_error: str | None
    due_at: datetime


class ReminderReport(BaseModel):
    by_status: dict[str, int]
    rules: list[RuleStats]
    programs: list[ProgramStats]
    failures: list[FailureRead]
    follow_up_hours: int = 48
