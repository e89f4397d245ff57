"""JSON API: instruments, questionnaire answers and history, risk alerts.

Who sees what in a questionnaire history: the patient sees their totals with neutral
wording of the range; the assigned therapist sees totals, band labels, answers and
reliable change against the baseline; a clinic admin sees only how many questionnaires
were completed and when, never scores or answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Request, Response

from app.accounts.dependencies import AnyUser, PatientUser, StaffUser, TherapistUser, actor_for
from app.clinics import service as clinics
from app.clinics.models import Enrollment
from app.common import idempotency
from app.common.openapi import PathId
from app.common.routing import Router
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession
from app.questionnaires import service
from app.questionnaires.schemas import (
    AlertAcknowledge,
    AlertRead,
    InstrumentRead,
    QuestionnaireHistory,
    QuestionnaireResult,
    QuestionnaireSubmit,
)

router = Router(tags=["questionnaires"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in"},
    403: {"description": "Forbidden"},
    404: {"description": "Not found"},
    422: {"description": "Invalid input"},
}
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def own_enrollment(
    enrollment_id: PathId, principal: PatientUser, db: DbSession
) -> Enrollment:
    """The caller's own enrollment, resolved before the body is validated.

    So a patient probing someone else's enrollment gets the same 404 whatever they send.
    """
    return await clinics.get_enrollment(db, principal, enrollment_id)


OwnEnrollment = Annotated[Enrollment, Depends(own_enrollment)]


@router.get("/instruments/{code}", response_model=InstrumentRead, responses=ERRORS)
async def get_instrument(code: str, request: Request, principal: AnyUser) -> InstrumentRead:
    """A questionnaire for display: items, options, recall period, bands, wording kind."""
    return service.instrument_view(service.get_instrument(library_of(request), code))


@router.post(
    "/enrollments/{enrollment_id}/questionnaires",
    status_code=201,
    response_model=QuestionnaireResult,
    responses={**ERRORS, 409: {"description": "Not due now"}},
)
async def submit_questionnaire(
    enrollment: OwnEnrollment,
    body: QuestionnaireSubmit,
    request: Request,
    response: Response,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> QuestionnaireResult | Response:
    """Answer a due questionnaire. The answer carries the total, a neutral range and, when a
    self-harm answer was given, the crisis contacts to show at once."""
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    if (
        replayed := await idempotency.replay(
            db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
        )
    ) is not None:
        return replayed
    outcome = await service.submit_questionnaire(
        db,
        actor_for(request, principal),
        enrollment,
        library_of(request),
        code=body.instrument,
        answers=body.answers,
        now=clock.now(),
    )
    result = service.submission_result(outcome)
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=result,
    )
    response.headers["Location"] = f"/api/v1/enrollments/{enrollment.id}/questionnaires"
    return result


@router.get(
    "/enrollments/{enrollment_id}/questionnaires",
    response_model=QuestionnaireHistory,
    responses=ERRORS,
)
async def questionnaire_history(
    enrollment_id: PathId, request: Request, principal: AnyUser, db: DbSession, clock: ClockDep
) -> QuestionnaireHistory:
    """Scores over time and what is due now, shaped by who is asking (see the module notes)."""
    enrollment = await clinics.get_enrollment(db, principal, enrollment_id)
    return await service.read_history(
        db,
        principal,
        actor_for(request, principal),
        enrollment,
        library_of(request),
        now=clock.now(),
    )


@router.get("/alerts", response_model=list[AlertRead], responses=ERRORS)
async def list_alerts(
    request: Request,
    principal: StaffUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    status: Literal["open", "acknowledged", "all"] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertRead]:
    """Risk alerts: a therapist's own patients', or (admins) the clinic's without notes.
    Unacknowledged first, urgent first."""
    return await service.list_alerts(
        db,
        principal,
        actor_for(request, principal),
        cipher=cipher,
        status=status,
        limit=limit,
        now=clock.now(),
    )


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertRead,
    responses={**ERRORS, 409: {"description": "Already acknowledged"}},
)
async def acknowledge_alert(
    alert_id: PathId,
    body: AlertAcknowledge,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> AlertRead:
    """The assigned therapist acknowledges an alert, optionally noting what they did."""
    return await service.acknowledge_alert(
        db,
        principal,
        actor_for(request, principal),
        alert_id,
        note=body.note,
        cipher=cipher,
        now=clock.now(),
    )
