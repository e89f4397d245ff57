"""Request and response shapes for messages, the work list, snippets, absences and stats."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic.config import JsonDict

from app.clinics.schemas import PersonRef
from app.questionnaires.schemas import AlertRead

Function = Literal["autonomy", "alliance", "emotion_regulation"]
HARD_MAX_BODY = 50_000
"""A ceiling on what is even parsed; the real limit (``message_max_length``) is a setting."""
MAX_ID = 2**31 - 1
"""Ids are 32-bit in the database; a larger number is a 422, not a database error."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same rule for the OpenAPI document, so clients (and the fuzzer) know it up front.
PRINTABLE: JsonDict = {"pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}


def _printable(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("remove the invisible control characters from this text")
    return value


def _moment(value: datetime) -> datetime:
    """A sane, timezone-aware moment in UTC (absences are planned in this century)."""
    if value.tzinfo is None:
        raise ValueError("give the time with a time zone, e.g. 2026-03-09T08:00:00+02:00")
    if not 2000 <= value.year <= 2100:
        raise ValueError("choose a date between the years 2000 and 2100")
    return value.astimezone(UTC)


class _Strict(BaseModel):
    """Unknown fields are refused. Text is kept exactly as typed (line breaks matter here)."""

    model_config = ConfigDict(extra="forbid")


# Messages -----------------------------------------------------------------------------------


class MessageCreate(_Strict):
    body: str = Field(max_length=HARD_MAX_BODY, description="Plain text; shown escaped.")
    functions: list[Function] = Field(
        default_factory=list,
        max_length=3,
        description="What the message is for (therapists only): autonomy, alliance, emotion_regulation.",
    )
    exercise_response_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Anchor: a submitted exercise of this enrollment.",
    )
    questionnaire_response_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Anchor: a questionnaire answer of this enrollment.",
    )

    @model_validator(mode="after")
    def _one_anchor(self) -> MessageCreate:
        if self.exercise_response_id is not None and self.questionnaire_response_id is not None:
            raise ValueError("anchor a message to one exercise or one questionnaire, not both")
        return self


class AnchorRead(BaseModel):
    kind: Literal["exercise", "questionnaire"]
    id: int
    title: str


class MessageRead(BaseModel):
    id: int
    enrollment_id: int
    sender: PersonRef | None
    sender_role: Literal["patient", "therapist"]
    body: str | None = Field(
        description="The text; null for clinic admins, who see that messages exist, never what they say."
    )
    functions: list[Function]
    anchor: AnchorRead | None
    created_at: datetime
    read_at: datetime | None = Field(description="When the other side first opened it.")


class MessagePage(BaseModel):
    enrollment_id: int
    items: list[MessageRead] = Field(description="Oldest first.")
    has_earlier: bool
    covering: PersonRef | None = Field(
        default=None, description="The colleague answering while the therapist is away."
    )


# Work list ----------------------------------------------------------------------------------


class WorkItemRead(BaseModel):
    """One thing to do. ``kind`` says which fields are filled."""

    kind: Literal["alert", "reply", "feedback", "quiet"]
    enrollment_id: int
    patient: PersonRef
    covering_for: PersonRef | None = Field(
        default=None,
        description="Set when the patient is a colleague's, covered during an absence.",
    )
    since: datetime = Field(
        description="Alert raised, oldest unanswered message, submission, or last activity."
    )
    alert: AlertRead | None = None
    waiting_messages: int | None = None
    unread_messages: int | None = None
    preview: str | None = None
    due_at: datetime | None = None
    seconds_left: int | None = Field(default=None, description="Negative when overdue.")
    exercise_response_id: int | None = None
    exercise_title: str | None = None
    module_title: str | None = None
    days_quiet: int | None = None
    last_contact_at: datetime | None = None


class WorkListRead(BaseModel):
    items: list[WorkItemRead] = Field(
        description="Alerts, then replies (longest waiting first), then feedback, then quiet patients."
    )
    counts: dict[str, int]
    generated_at: datetime


# Snippets -----------------------------------------------------------------------------------


class SnippetWrite(_Strict):
    title: str = Field(min_length=1, max_length=120, json_schema_extra=PRINTABLE)
    body: str = Field(min_length=1, max_length=2000, json_schema_extra=PRINTABLE)
    function: Function
    shared: StrictBool = Field(
        default=False, description="Also offer it to colleagues in the clinic."
    )

    _text = field_validator("title", "body")(_printable)


class SnippetUpdate(_Strict):
    title: str | None = Field(
        default=None, min_length=1, max_length=120, json_schema_extra=PRINTABLE
    )
    body: str | None = Field(
        default=None, min_length=1, max_length=2000, json_schema_extra=PRINTABLE
    )
    function: Function | None = None
    shared: StrictBool | None = None

    _text = field_validator("title", "body")(_printable)


class SnippetRead(BaseModel):
    id: int
    title: str
    body: str
    function: Function
    scope: Literal["default", "clinic", "own"]
    shared: bool
    owner: PersonRef | None
    editable: bool
    rendered: str | None = Field(
        default=None, description="With the placeholders filled in for ?enrollment_id=."
    )


# Absences -----------------------------------------------------------------------------------


class AbsenceCreate(_Strict):
    starts_at: datetime
    ends_at: datetime
    covering_therapist_id: int = Field(ge=1, le=MAX_ID)

    _moments = field_validator("starts_at", "ends_at")(_moment)


class AbsenceRead(BaseModel):
    id: int
    therapist: PersonRef
    covering: PersonRef
    starts_at: datetime
    ends_at: datetime
    active: bool


# Clinic statistics ----------------------------------------------------------------------------


class TherapistMessageStats(BaseModel):
    therapist: PersonRef
    messages_sent: int
    patient_messages: int
    replies: int
    median_reply_hours: float | None
    replies_within_promise: int
    waiting_now: int
    overdue_now: int
    functions: dict[str, int]


class MessageStatsRead(BaseModel):
    """Counts and response times only: never a message body."""

    days: int
    since: datetime
    promise_working_days: int
    therapists: list[TherapistMessageStats]
