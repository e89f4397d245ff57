"""Clinic operations: therapists, enrolling patients, invitations, reassignment, status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.accounts.policy import Principal, can_access_enrollment, scope_enrollments
from app.adherence import service as adherence
from app.adherence.models import EnrollmentRollup
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import OPEN_STATUSES, Clinic, Enrollment, EnrollmentStatus, Patient
from app.clinics.schemas import (
    ClinicCrisisUpdate,
    EnrollmentCreate,
    EnrollmentRead,
    EnrollmentUpdate,
    PatientRef,
    PersonRef,
    TherapistRead,
)
from app.common.errors import Conflict, Invalid, NotFound
from app.common.failpoints import failpoint
from app.config import Settings
from app.programs.catalogue import program_title

ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    EnrollmentStatus.INVITED: {"paused", "completed", "dropped", "closed"},
    EnrollmentStatus.ACTIVE: {"paused", "completed", "dropped", "closed"},
    EnrollmentStatus.PAUSED: {"active", "completed", "dropped", "closed"},
}


def invitation_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/invite/{token}"


async def get_clinic(db: AsyncSession, clinic_id: int) -> Clinic:
    clinic = await db.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("Clinic not found.")
    return clinic


async def update_crisis_contacts(
    db: AsyncSession, actor: Actor, clinic: Clinic, data: ClinicCrisisUpdate
) -> Clinic:
    """Change the numbers patients are shown in a crisis; only the fields sent change."""
    sent = data.model_fields_set
    if "emergency_number" in sent and data.emergency_number:
        clinic.emergency_number = data.emergency_number
    if "crisis_line_name" in sent and data.crisis_line_name:
        clinic.crisis_line_name = data.crisis_line_name
    if "crisis_line_number" in sent:
        clinic.crisis_line_number = data.crisis_line_number or None
    if "retention_days" in sent:
        clinic.retention_days = data.retention_days
    if "language" in sent and data.language:
        clinic.language = data.language
    await db.flush()
    await audit.record(
        db,
        actor,
        action="update",
        resource_type="clinic",
        resource_id=clinic.id,
        clinic_id=clinic.id,
    )
    return clinic


# Therapists -------------------------------------------------------------------------


async def list_therapists(db: AsyncSession, clinic_id: int) -> list[TherapistRead]:
    """Therapists with their open caseload size, in one query."""
    caseload = (
        select(Enrollment.therapist_id, func.count().label("n"))
        .where(Enrollment.clinic_id == clinic_id, Enrollment.status.in_(OPEN_STATUSES))
        .group_by(Enrollment.therapist_id)
        .subquery()
    )
    rows = await db.execute(
        select(User, func.coalesce(caseload.c.n, 0))
        .outerjoin(caseload, caseload.c.therapist_id == User.id)
        .where(User.clinic_id == clinic_id, User.role == Role.THERAPIST)
        .order_by(User.full_name, User.id)
    )
    return [
        TherapistRead(
            id=u.id,
            full_name=u.full_name,
            email=u.email,
            is_active=u.is_active,
            two_factor_enabled=u.totp_enabled_at is not None,
            active_patients=int(n),
        )
        for u, n in rows
    ]


async def create_therapist(
    db: AsyncSession,
    actor: Actor,
    *,
    clinic_id: int,
    full_name: str,
    email: str,
    settings: Settings,
    now: datetime,
) -> tuple[User, str]:
    """A therapist account with a one-time link to set their own password."""
    if await accounts_service.email_taken(db, email):
        raise Conflict("An account with this e-mail address already exists.", code="email_taken")
    user = await accounts_service.create_user(
        db, clinic_id=clinic_id, email=email, full_name=full_name, role=Role.THERAPIST, now=now
    )
    token = await accounts_service.create_invitation(
        db,
        user_id=user.id,
        enrollment_id=None,
        created_by_id=actor.user_id,
        settings=settings,
        now=now,
    )
    await audit.record(
        db,
        actor,
        action="create",
        resource_type="therapist",
        resource_id=user.id,
        clinic_id=clinic_id,
    )
    return user, token


async def _valid_therapist(db: AsyncSession, clinic_id: int, therapist_id: int) -> User:
    therapist = await db.get(User, therapist_id)
    if (
        therapist is None
        or therapist.clinic_id != clinic_id
        or therapist.role != Role.THERAPIST
        or not therapist.is_active
    ):
        raise Invalid(
            "Choose an active therapist from this clinic.",
            field="therapist_id",
            code="invalid_therapist",
        )
    return therapist


# Enrollments ------------------------------------------------------------------------


async def enroll_patient(
    db: AsyncSession,
    actor: Actor,
    data: EnrollmentCreate,
    *,
    clinic_id: int,
    settings: Settings,
    now: datetime,
) -> tuple[Enrollment, str]:
    """Create the patient, their enrollment and a one-time invitation, all or nothing."""
    await _valid_therapist(db, clinic_id, data.therapist_id)
    if await accounts_service.email_taken(db, data.email):
        raise Conflict("An account with this e-mail address already exists.", code="email_taken")
    user = await accounts_service.create_user(
        db,
        clinic_id=clinic_id,
        email=data.email,
        full_name=data.full_name,
        role=Role.PATIENT,
        now=now,
    )
    patient = Patient(
        user_id=user.id,
        clinic_id=clinic_id,
        phone=data.phone,
        timezone=data.timezone,
        created_at=now,
    )
    db.add(patient)
    await db.flush()
    await failpoint("enrollment.after_patient")
    enrollment = Enrollment(
        clinic_id=clinic_id,
        patient_id=patient.id,
        therapist_id=data.therapist_id,
        program=data.program,
        status=EnrollmentStatus.INVITED,
        created_by_id=actor.user_id,
        created_at=now,
        status_changed_at=now,
    )
    db.add(enrollment)
    await db.flush()
    await failpoint("enrollment.after_insert")
    token = await accounts_service.create_invitation(
        db,
        user_id=user.id,
        enrollment_id=enrollment.id,
        created_by_id=actor.user_id,
        settings=settings,
        now=now,
    )
    await failpoint("enrollment.after_invitation")
    await audit.record(
        db,
        actor,
        action="create",
        resource_type="enrollment",
        resource_id=enrollment.id,
        patient_id=patient.id,
        clinic_id=clinic_id,
    )
    await failpoint("enrollment.after_audit")
    return enrollment, token


def _enrollment_view_query() -> tuple[Any, Any, Any]:
    patient_user = aliased(User, name="patient_user")
    therapist = aliased(User, name="therapist")
    stmt = (
        select(Enrollment, Patient, patient_user, therapist, EnrollmentRollup.last_activity_at)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .join(patient_user, patient_user.id == Patient.user_id)
        .join(therapist, therapist.id == Enrollment.therapist_id)
        .outerjoin(EnrollmentRollup, EnrollmentRollup.enrollment_id == Enrollment.id)
    )
    return stmt, patient_user, therapist


def _to_view(row: Any) -> EnrollmentRead:
    enrollment, patient, patient_user, therapist, last_activity_at = row
    return EnrollmentRead(
        id=enrollment.id,
        program=enrollment.program,
        program_title=program_title(enrollment.program),
        status=enrollment.status,
        patient=PatientRef(
            id=patient.id,
            full_name=patient_user.full_name,
            email=patient_user.email,
            phone=patient.phone,
            timezone=patient.timezone,
        ),
        therapist=PersonRef(id=therapist.id, full_name=therapist.full_name),
        created_at=enrollment.created_at,
        activated_at=enrollment.activated_at,
        ended_at=enrollment.ended_at,
        last_activity_at=last_activity_at,
    )


async def get_enrollment(db: AsyncSession, principal: Principal, enrollment_id: int) -> Enrollment:
    """The enrollment if the caller may see it; otherwise 404, exactly as if it did not exist."""
    enrollment = await db.get(Enrollment, enrollment_id)
    if enrollment is None or not can_access_enrollment(principal, enrollment):
        raise NotFound("Enrollment not found.")
    return enrollment


async def enrollment_view(db: AsyncSession, enrollment_id: int) -> EnrollmentRead:
    stmt, _, _ = _enrollment_view_query()
    row = (await db.execute(stmt.where(Enrollment.id == enrollment_id))).one()
    return _to_view(row)


async def read_enrollment(
    db: AsyncSession, principal: Principal, actor: Actor, enrollment_id: int
) -> EnrollmentRead:
    """Load, authorise and audit one enrollment read."""
    enrollment = await get_enrollment(db, principal, enrollment_id)
    await audit.record(
        db,
        actor,
        action="read",
        resource_type="enrollment",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return await enrollment_view(db, enrollment.id)


async def list_enrollments(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    *,
    status: str | None = None,
    program: str | None = None,
    therapist_id: int | None = None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 25,
    now: datetime,
) -> tuple[list[EnrollmentRead], int]:
    """A filtered page of the enrollments the caller may see: two queries whatever the page size."""
    stmt, patient_user, _ = _enrollment_view_query()
    stmt = scope_enrollments(stmt, principal, Enrollment)
    if status:
        stmt = stmt.where(Enrollment.status == status)
    if program:
        stmt = stmt.where(Enrollment.program == program)
    if therapist_id:
        stmt = stmt.where(Enrollment.therapist_id == therapist_id)
    if search:
        pattern = f"%{search.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(patient_user.full_name).like(pattern),
                func.lower(patient_user.email).like(pattern),
            )
        )
    total = int(
        await db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )
    rows = await db.execute(
        stmt.order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [_to_view(r) for r in rows]
    # A list shows patient names, so each patient shown gets a read entry (one statement).
    await audit.record_many(
        db,
        actor,
        action="list",
        resource_type="enrollment",
        targets=[(item.id, item.patient.id) for item in items],
        at=now,
    )
    return items, total


async def update_enrollment(
    db: AsyncSession, actor: Actor, enrollment: Enrollment, data: EnrollmentUpdate, *, now: datetime
) -> Enrollment:
    """Reassign, change status or contact details; each change is audited and logged."""
    if data.therapist_id is not None and data.therapist_id != enrollment.therapist_id:
        await _valid_therapist(db, enrollment.clinic_id, data.therapist_id)
        enrollment.therapist_id = data.therapist_id
    if data.status is not None and data.status != enrollment.status:
        allowed = ALLOWED_TRANSITIONS.get(enrollment.status, set())
        if data.status not in allowed:
            if enrollment.status == EnrollmentStatus.INVITED and data.status == "active":
                raise Conflict(
                    "The enrollment becomes active when the patient accepts the invitation.",
                    code="invalid_transition",
                )
            raise Conflict(
                f"An enrollment that is {enrollment.status} cannot become {data.status}.",
                code="invalid_transition",
            )
        previous = enrollment.status
        enrollment.status = data.status
        enrollment.status_changed_at = now
        if data.status in ("completed", "dropped", "closed"):
            enrollment.ended_at = now
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=adherence.EventKind.STATUS_CHANGED,
            at=now,
            actor_role=actor.role,
            detail={"from": previous, "to": data.status},
        )
    if data.phone is not None or data.timezone is not None:
        patient = await db.get(Patient, enrollment.patient_id)
        if patient is None:
            raise NotFound("Patient not found.")
        if data.phone is not None:
            patient.phone = data.phone or None
        if data.timezone is not None:
            patient.timezone = data.timezone
    await db.flush()
    await audit.record(
        db,
        actor,
        action="update",
        resource_type="enrollment",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return enrollment


async def resend_invitation(
    db: AsyncSession, actor: Actor, enrollment: Enrollment, *, settings: Settings, now: datetime
) -> str:
    """A new link; the old one stops working at once."""
    if enrollment.status != EnrollmentStatus.INVITED:
        raise Conflict("The patient has already accepted the invitation.", code="already_accepted")
    patient = await db.get(Patient, enrollment.patient_id)
    if patient is None:
        raise NotFound("Patient not found.")
    token = await accounts_service.create_invitation(
        db,
        user_id=patient.user_id,
        enrollment_id=enrollment.id,
        created_by_id=actor.user_id,
        settings=settings,
        now=now,
    )
    await audit.record(
        db,
        actor,
        action="resend_invitation",
        resource_type="enrollment",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return token


async def activate_after_invitation(
    db: AsyncSession, enrollment_id: int | None, *, now: datetime
) -> None:
    """Accepting the invitation starts the treatment."""
    if enrollment_id is None:
        return
    enrollment = await db.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.status != EnrollmentStatus.INVITED:
        return
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.activated_at = now
    enrollment.status_changed_at = now
    await adherence.record(
        db, enrollment_id=enrollment.id, kind=adherence.EventKind.INVITATION_ACCEPTED, at=now
    )


async def current_enrollment_for_patient(db: AsyncSession, patient_id: int) -> Enrollment | None:
    """The patient's open enrollment (the newest if there were several)."""
    return await db.scalar(
        select(Enrollment)
        .where(Enrollment.patient_id == patient_id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(1)
    )


async def open_enrollment_ids_for_user(db: AsyncSession, user_id: int) -> list[int]:
    """Enrollments a patient login counts towards."""
    rows = await db.scalars(
        select(Enrollment.id)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .where(Patient.user_id == user_id, Enrollment.status.in_(OPEN_STATUSES))
    )
    return list(rows)
