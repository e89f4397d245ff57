"""JSON API for clinic admins (therapists, enrollments) and scoped enrollment reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request, Response

from app.accounts.dependencies import AdminUser, AnyUser, actor_for
from app.clinics import service
from app.clinics.schemas import (
    ClinicCrisisUpdate,
    ClinicRead,
    EnrollmentCreate,
    EnrollmentCreated,
    EnrollmentPage,
    EnrollmentRead,
    EnrollmentUpdate,
    InvitationIssued,
    TherapistCreate,
    TherapistCreated,
    TherapistRead,
)
from app.common import idempotency
from app.common.openapi import ERRORS, PathId, QueryId, with_errors
from app.common.routing import Router
from app.deps import ClockDep, DbSession, SettingsDep

router = Router(tags=["clinics"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.get("/therapists", response_model=list[TherapistRead], responses=ERRORS)
async def list_therapists(principal: AdminUser, db: DbSession) -> list[TherapistRead]:
    """The clinic's therapists with their open caseloads."""
    return await service.list_therapists(db, principal.clinic_id)


@router.post(
    "/therapists",
    status_code=201,
    response_model=TherapistCreated,
    responses=with_errors(e409="E-mail taken"),
)
async def create_therapist(
    body: TherapistCreate,
    request: Request,
    response: Response,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> TherapistCreated | Response:
    """Create a therapist account; the answer carries their one-time invitation link."""
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    if (
        replayed := await idempotency.replay(
            db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
        )
    ) is not None:
        return replayed
    user, token = await service.create_therapist(
        db,
        actor_for(request, principal),
        clinic_id=principal.clinic_id,
        full_name=body.full_name,
        email=body.email,
        settings=settings,
        now=clock.now(),
    )
    result = TherapistCreated(
        id=user.id,
        full_name=user.full_name,
        email=user.email,
        is_active=True,
        two_factor_enabled=False,
        invitation_url=service.invitation_url(settings, token),
    )
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=result,
    )
    response.headers["Location"] = f"/api/v1/therapists/{user.id}"
    return result


@router.get("/enrollments", response_model=EnrollmentPage, responses=ERRORS)
async def list_enrollments(
    request: Request,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
    status: Annotated[
        str | None, Query(pattern="^(invited|active|paused|completed|dropped|closed)$")
    ] = None,
    program: Annotated[str | None, Query(max_length=32)] = None,
    therapist_id: QueryId = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 25,
) -> EnrollmentPage:
    """Enrollments the caller may see: the clinic's (admin), their patients' (therapist), their own (patient)."""
    items, total = await service.list_enrollments(
        db,
        principal,
        actor_for(request, principal),
        status=status,
        program=program,
        therapist_id=therapist_id,
        search=q,
        page=page,
        per_page=per_page,
        now=clock.now(),
    )
    return EnrollmentPage(items=items, total=total, page=page, per_page=per_page)


@router.post(
    "/enrollments",
    status_code=201,
    response_model=EnrollmentCreated,
    responses=with_errors(e409="E-mail taken"),
)
async def create_enrollment(
    body: EnrollmentCreate,
    request: Request,
    response: Response,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> EnrollmentCreated | Response:
    """Enroll a patient in a program with a therapist; returns the invitation link to pass on."""
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    if (
        replayed := await idempotency.replay(
            db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
        )
    ) is not None:
        return replayed
    enrollment, token = await service.enroll_patient(
        db,
        actor_for(request, principal),
        body,
        clinic_id=principal.clinic_id,
        settings=settings,
        now=clock.now(),
    )
    view = await service.enrollment_view(db, enrollment.id)
    result = EnrollmentCreated(
        **view.model_dump(), invitation_url=service.invitation_url(settings, token)
    )
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=result,
    )
    response.headers["Location"] = f"/api/v1/enrollments/{enrollment.id}"
    return result


@router.get(
    "/enrollments/{enrollment_id}",
    response_model=EnrollmentRead,
    responses=with_errors(e404="Not found"),
)
async def get_enrollment(
    enrollment_id: PathId, request: Request, principal: AnyUser, db: DbSession
) -> EnrollmentRead:
    """One enrollment, if the caller may see it."""
    return await service.read_enrollment(
        db, principal, actor_for(request, principal), enrollment_id
    )


@router.patch(
    "/enrollments/{enrollment_id}",
    response_model=EnrollmentRead,
    responses={
        **ERRORS,
        404: {"description": "Not found"},
        409: {"description": "Transition not allowed"},
    },
)
async def update_enrollment(
    enrollment_id: PathId,
    body: EnrollmentUpdate,
    request: Request,
    principal: AdminUser,
    db: DbSession,
    clock: ClockDep,
) -> EnrollmentRead:
    """Reassign the therapist, pause, resume or end a treatment, or update contact details."""
    enrollment = await service.get_enrollment(db, principal, enrollment_id)
    await service.update_enrollment(
        db, actor_for(request, principal), enrollment, body, now=clock.now()
    )
    return await service.enrollment_view(db, enrollment.id)


@router.post(
    "/enrollments/{enrollment_id}/invitation",
    response_model=InvitationIssued,
    responses={
        **ERRORS,
        404: {"description": "Not found"},
        409: {"description": "Already accepted"},
    },
)
async def resend_invitation(
    enrollment_id: PathId,
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> InvitationIssued:
    """Issue a fresh invitation link; earlier links stop working."""
    enrollment = await service.get_enrollment(db, principal, enrollment_id)
    token = await service.resend_invitation(
        db, actor_for(request, principal), enrollment, settings=settings, now=clock.now()
    )
    return InvitationIssued(
        invitation_url=service.invitation_url(settings, token),
        expires_in_days=settings.invitation_valid_days,
    )


@router.get("/clinic", response_model=ClinicRead, responses=ERRORS)
async def get_clinic(principal: AnyUser, db: DbSession) -> ClinicRead:
    """The caller's clinic with the crisis contacts its patients are shown."""
    clinic = await service.get_clinic(db, principal.clinic_id)
    return ClinicRead.model_validate(clinic, from_attributes=True)


@router.patch("/clinic", response_model=ClinicRead, responses=ERRORS)
async def update_clinic(
    body: ClinicCrisisUpdate, request: Request, principal: AdminUser, db: DbSession
) -> ClinicRead:
    """Change the emergency number and crisis line shown to the clinic's patients, the
    retention period, or the clinic's language (reminders to anyone who chose none)."""
    clinic = await service.get_clinic(db, principal.clinic_id)
    await service.update_crisis_contacts(db, actor_for(request, principal), clinic, body)
    return ClinicRead.model_validate(clinic, from_attributes=True)
