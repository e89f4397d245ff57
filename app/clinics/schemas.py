"""Request and response shapes for clinics, therapists and enrollments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.clinics.models import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from app.common.openapi import MAX_ID
from app.programs.catalogue import PROGRAMS

_TIMEZONES = available_timezones()


def _check_email(value: str) -> str:
    """A well-formed address; ``.test`` domains pass, as the demo clinic lives under one."""
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from exc


Email = Annotated[
    str, AfterValidator(_check_email), WithJsonSchema({"type": "string", "format": "email"})
]
# The documented schema names every accepted value; validators below give the friendly errors.
TimeZoneName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(_TIMEZONES)})]
ProgramSlug = Annotated[str, WithJsonSchema({"type": "string", "enum": list(PROGRAMS)})]


class StrictModel(BaseModel):
    """Unknown fields are refused, so nobody can slip in ``role`` or ``clinic_id``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TherapistCreate(StrictModel):
    full_name: str = Field(min_length=2, max_length=200)
    email: Email


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
    email: Email
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,31}$")
    timezone: TimeZoneName = "Europe/Helsinki"
    program: ProgramSlug
    therapist_id: int = Field(ge=1, le=MAX_ID)

    _tz = field_validator("timezone")(_check_timezone)
    _program = field_validator("program")(_check_program)


EnrollmentAction = Literal["pause", "resume", "complete", "drop", "close"]


class EnrollmentUpdate(StrictModel):
    therapist_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    status: Literal["active", "paused", "completed", "dropped", "closed"] | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,31}$")
    timezone: TimeZoneName | None = None

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


ClinicLanguage = Literal["en", "fi"]
CLINIC_LANGUAGES: tuple[str, ...] = get_args(ClinicLanguage)
"""The interface languages (``app.web.i18n.SUPPORTED_LOCALES``; a test keeps them equal)."""


def _whole_number(value: object) -> object:
    """JSON counts ``1555.0`` as an integer, so it is one; strict mode still refuses "1555"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ClinicCrisisUpdate(StrictModel):
    """Crisis contacts patients see on every page and at once after a self-harm answer,
    how long data is kept after a treatment ends, and the clinic's language.

    Fields left out stay as they are; an empty ``crisis_line_number`` removes the line.
    ``retention_days`` null means keep indefinitely (see README "Operations").
    """

    # Left out means unchanged; null is refused (documented as not allowed), as these two (and
    # the language) can be changed but not removed.
    emergency_number: Annotated[
        str | None, WithJsonSchema({"type": "string", "maxLength": 32, "pattern": _PHONE})
    ] = Field(default=None, max_length=32, pattern=_PHONE)
    crisis_line_name: Annotated[
        str | None, WithJsonSchema({"type": "string", "minLength": 2, "maxLength": 120})
    ] = Field(default=None, min_length=2, max_length=120)
    crisis_line_number: str | None = Field(default=None, max_length=32, pattern=rf"{_PHONE}|^$")
    retention_days: Annotated[int | None, BeforeValidator(_whole_number)] = Field(
        default=None, ge=RETENTION_DAYS_MIN, le=RETENTION_DAYS_MAX, strict=True
    )
    # Reminders go out in it to anyone who chose no language of their own.
    language: Annotated[
        ClinicLanguage | None, WithJsonSchema({"type": "string", "enum": list(CLINIC_LANGUAGES)})
    ] = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> ClinicCrisisUpdate:
        for name in ("emergency_number", "crisis_line_name", "language"):
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
    retention_days: int | None = None
    language: str = "en"
