"""Request and response shapes for instruments, questionnaire answers and risk alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.clinics.schemas import PersonRef

Occasion = Literal["baseline", "weekly", "end", "extra"]
ChangeResult = Literal["improved", "deteriorated", "no_reliable_change"]
AlertLevel = Literal["urgent", "warning", "info"]

MAX_ITEMS = 100
MAX_NOTE = 1000


class StrictModel(BaseModel):
    """Unknown fields are refused, so a client cannot send a total or an occasion of its own."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Instruments --------------------------------------------------------------------------------


class OptionRead(BaseModel):
    value: int
    label: str


class ItemRead(BaseModel):
    id: str
    text: str
    options: list[OptionRead]


class BandRead(BaseModel):
    min: int
    max: int
    label: str


class InstrumentRead(BaseModel):
    """An instrument for display. Risk rules stay server-side: they are not needed to answer."""

    code: str
    title: str
    wording: Literal["summary", "official"]
    wording_notice: str | None = Field(
        description="Set when item texts are summaries in Tuki's words, not the licensed wording."
    )
    recall: str | None
    direction: Literal["lower_is_better", "higher_is_better"]
    source: str
    items: list[ItemRead]
    min_total: int
    max_total: int
    bands: list[BandRead]
    reliable_change: float


# Answers ------------------------------------------------------------------------------------


class QuestionnaireSubmit(StrictModel):
    """One complete set of answers; totals, bands and the occasion are decided by the server."""

    instrument: str = Field(min_length=1, max_length=32)
    answers: dict[str, Any] = Field(
        description="Item id -> the value of the chosen option, e.g. {'q1': 0, 'q2': 3}."
    )

    @field_validator("answers")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} answers")
        if any(len(key) > 40 for key in value):
            raise ValueError("item ids are at most 40 characters")
        return value


class CrisisInfo(BaseModel):
    """Who to call now: shown to a patient the moment an urgent risk rule fires."""

    message: str
    emergency_number: str
    crisis_line_name: str | None
    crisis_line_number: str | None
    watched_around_the_clock: bool = False
    therapist_notified: bool = True


class QuestionnaireResult(BaseModel):
    id: int
    instrument: str
    title: str
    occasion: Occasion
    week: int
    completed_at: datetime
    total: int
    max_total: int
    band: str = Field(description="Neutral, non-diagnostic wording of where the total lies.")
    therapist_notified: bool
    crisis: CrisisInfo | None


class DueRead(BaseModel):
    code: str
    title: str
    occasion: Occasion
    week: int


class ScoreEntry(BaseModel):
    id: int
    occasion: Occasion
    week: int
    completed_at: datetime
    total: int
    band: str = Field(description="The band label for therapists; neutral wording for the patient.")
    answers: dict[str, int]


class ReliableChangeRead(BaseModel):
    baseline_total: int
    latest_total: int
    change: int
    threshold: float
    result: ChangeResult


class InstrumentHistory(BaseModel):
    code: str
    title: str
    wording: Literal["summary", "official"]
    direction: Literal["lower_is_better", "higher_is_better"]
    min_total: int
    max_total: int
    completed: int
    last_completed_at: datetime | None
    entries: list[ScoreEntry] | None = Field(
        description="Absent for clinic admins, who see counts but never scores or answers."
    )
    reliable_change: ReliableChangeRead | None = Field(
        description="Therapists only: the latest total against the baseline."
    )


class QuestionnaireHistory(BaseModel):
    enrollment_id: int
    view: Literal["patient", "therapist", "admin"]
    instruments: list[InstrumentHistory]
    due: list[DueRead]


# Alerts -------------------------------------------------------------------------------------


class AlertAcknowledge(StrictModel):
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class AlertRead(BaseModel):
    id: int
    enrollment_id: int
    patient: PersonRef
    program: str
    level: AlertLevel
    source: str
    reason: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: PersonRef | None
    note: str | None = Field(
        default=None, description="The acknowledging therapist's note; never shown to admins."
    )
