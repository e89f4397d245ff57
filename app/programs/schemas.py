"""Request and response shapes for programs, a patient's path, exercises and tailoring."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.clinics.schemas import PersonRef, StrictModel
from app.common.openapi import MAX_ID

ModuleStatus = Literal["locked", "available", "in_progress", "completed"]
LockKind = Literal["not_started", "previous", "therapist_gate", "date", "hidden"]

# --- catalogue -------------------------------------------------------------------------------


class PacingRead(BaseModel):
    unlock: Literal["sequential", "all"]
    therapist_gate: bool
    min_days_between_modules: int


class ModuleOutline(BaseModel):
    key: str
    number: int
    title: str
    minutes: int
    summary: str
    exercises: int
    homework: int


class ProgramSummary(BaseModel):
    slug: str
    title: str
    summary: str | None = None
    weeks: int | None = None
    module_count: int = 0
    total_minutes: int = 0


class InstrumentPlan(BaseModel):
    weekly: list[str]
    baseline_and_end: list[str]


class ProgramDetail(ProgramSummary):
    pacing: PacingRead | None = None
    instruments: InstrumentPlan | None = None
    modules: list[ModuleOutline] = Field(default_factory=list)


# --- a patient's path ----------------------------------------------------------------------------


class PathPacingRead(PacingRead):
    """The pacing in force for this patient, and which parts the therapist changed."""

    therapist_gate_overridden: bool = False
    min_days_overridden: bool = False


class ModuleStatusRead(BaseModel):
    ref: str = Field(description="How to name the module in URLs: its key, or program:key if added")
    program: str
    key: str
    number: int | None = Field(description="Place among the modules the patient sees")
    position: int
    title: str
    minutes: int
    summary: str
    status: ModuleStatus
    locked_reason: str | None = None
    lock: LockKind | None = None
    opens_on: date | None = None
    hidden: bool = False
    added: bool = Field(default=False, description="Added by the therapist from another program")
    added_from_title: str | None = None
    opened_early: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_page: int = 0
    page_count: int = 0


class ModulePathRead(BaseModel):
    enrollment_id: int
    program: str
    program_title: str
    pacing: PathPacingRead
    completed: int
    total: int
    next: str | None = Field(default=None, description="Ref of the module to work on now")
    modules: list[ModuleStatusRead]


class FormFieldRead(BaseModel):
    name: str
    label: str
    kind: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: list[tuple[str, str]] = Field(default_factory=list)
    fields: list[FormFieldRead] = Field(default_factory=list)
    max_rows: int | None = None
    low_label: str | None = None
    high_label: str | None = None


class PageSegmentRead(BaseModel):
    html: str
    exercise_id: str | None = None


class PageRead(BaseModel):
    number: int
    title: str
    segments: list[PageSegmentRead]


class ResponseRead(BaseModel):
    """A saved answer. ``data`` is left out for readers who may only see that work exists."""

    status: Literal["draft", "submitted"]
    version: int
    data: dict[str, Any] | None = None
    derived: dict[str, Any] | None = None
    updated_at: datetime
    submitted_at: datetime | None = None


class ExerciseRead(BaseModel):
    id: str
    type: str
    title: str
    instructions: str
    homework: bool
    questions: list[str] | None = None
    page: int | None = Field(description="Page the form sits on; None means after the last page")
    fields: list[FormFieldRead]
    response: ResponseRead | None = None


class ModuleDetailRead(ModuleStatusRead):
    pages: list[PageRead]
    exercises: list[ExerciseRead]


class PositionSave(StrictModel):
    page: int = Field(ge=1, le=500)


class DraftSave(StrictModel):
    data: dict[str, Any]
    version: int = Field(
        ge=0, le=MAX_ID, description="The version you last saw; 0 for a new answer"
    )


class SubmitBody(StrictModel):
    data: dict[str, Any] | None = Field(
        default=None, description="The answer to submit; leave out to submit the saved draft"
    )
    version: int = Field(ge=0, le=MAX_ID)


class SavedRead(BaseModel):
    response: ResponseRead


class CompletionRead(BaseModel):
    module: ModuleStatusRead
    next: ModuleStatusRead | None = None
    completed: int
    total: int


class ExerciseWorkRead(BaseModel):
    """One exercise answer in an enrollment's list of work."""

    module_ref: str
    program: str
    module_key: str
    module_title: str
    exercise_id: str
    exercise_title: str
    type: str
    response: ResponseRead


# --- tailoring -------------------------------------------------------------------------------------


class _ModuleAction(StrictModel):
    module: str = Field(min_length=1, max_length=160, description="Module ref on this path")


class OpenEarly(_ModuleAction):
    action: Literal["open_early"]


class Hide(_ModuleAction):
    action: Literal["hide"]


class Unhide(_ModuleAction):
    action: Literal["unhide"]


class RemoveModule(_ModuleAction):
    action: Literal["remove_module"]


class AddModule(StrictModel):
    action: Literal["add_module"]
    program: str | None = Field(
        default=None, max_length=32, description="Program the module comes from"
    )
    module: str = Field(
        min_length=1, max_length=160, description="Module key, or program/key in one string"
    )
    after: str | None = Field(
        default=None,
        max_length=160,
        description="Ref of the module to place it after; 'start' for first; empty for last",
    )


class SetPacing(StrictModel):
    action: Literal["set_pacing"]
    therapist_gate: StrictBool | None = Field(
        default=None, description="None = the program's setting"
    )
    min_days_between_modules: int | None = Field(default=None, ge=0, le=60)


TailoringAction = Annotated[
    OpenEarly | Hide | Unhide | RemoveModule | AddModule | SetPacing,
    Field(discriminator="action"),
]


class TailoringChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    description: str
    detail: dict[str, Any]
    actor: PersonRef | None = None
    at: datetime
    reverted_at: datetime | None = None
    revertible: bool = False
