"""Request and response shapes for clinics, therapists and enrollments."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from app.programs.catalogue import PROGRAMS

_TIMEZONES = available_timezones()


class StrictModel(BaseModel):
    """Unknown fields are refused, so nobody can slip in ``role`` or ``clinic_id``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TherapistCreate(StrictModel):
    full_name: str = Field(min_length=2, max_length=200)
    email: EmailStr


class TherapistRead(BaseModel):
    id: int
    full_name: str
    email: str
    is_active: bool
    two_factor_enabled: bool
    active_patients: int = 0


class TherapistCreated(TherapistRead):
    invitation_url: str


def _check_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("unknown time zone; use a name such as Europe/Helsinki")
    return value


def _check_program(value: str) -> str:
    if value not in PROGRAMS:
        raise ValueError(f"unknown program; choose one of: {', '.join(PROGRAMS)}")
    return value


class EnrollmentCreate(StrictModel):
    full_name: str = Field(min_length=2, max_length=200)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,31}$")
    timezone: str = "Europe/Helsinki"
    program: str
    therapist_id: int

    _tz = field_validator("timezone")(_check_timezone)
    _program = field_validator("program")(_check_program)


EnrollmentAction = Literal["pause", "resume", "complete", "drop", "close"]


class EnrollmentUpdate(StrictModel):
    therapist_id: int | None = None
    status: Literal["active", "paused", "completed", "dropped", "closed"] | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,31}$")
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class PersonRef(BaseModel):
    id: int
    full_name: str


class PatientRef(PersonRef):
    email: str
    phone: str | None = None
    timezone: str


class EnrollmentRead(BaseModel):
    id: int
    program: str
    program_title: str
    status: str
    patient: PatientRef
    therapist: PersonRef
    created_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None
    last_activity_at: datetime | None = None


class EnrollmentCreated(EnrollmentRead):
    invitation_url: str


class InvitationIssued(BaseModel):
    invitation_url: str
    expires_in_days: int


class EnrollmentPage(BaseModel):
    items: list[EnrollmentRead]
    total: int
    page: int
    per_page: int


_PHONE = r"^\+?[0-9][0-9 ()-]{1,30}$"


class ClinicCrisisUpdate(StrictModel):
    """Crisis contacts patients see on every page and at once after a self-harm answer.

    Fields left out stay as they are; an empty ``crisis_line_number`` removes the line.
    """

    emergency_number: str | None = Field(default=None, max_length=32, pattern=_PHONE)
    crisis_line_name: str | None = Field(default=None, min_length=2, max_length=120)
    crisis_line_number: str | None = Field(default=None, max_length=32, pattern=rf"{_PHONE}|^$")

    @model_validator(mode="after")
    def _required_stay_set(self) -> ClinicCrisisUpdate:
        for name in ("emergency_number", "crisis_line_name"):
            if name in self.model_fields_set and not getattr(self, name):
                raise ValueError(f"{name} cannot be removed, only changed")
        return self


class ClinicRead(BaseModel):
    id: int
    name: str
    timezone: str
    emergency_number: str
    crisis_line_name: str
    crisis_line_number: str | None
