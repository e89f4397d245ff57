"""JSON API: the program catalogue, a patient's path, reading, exercises and tailoring."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from app.accounts.dependencies import (
    AnyUser,
    PatientUser,
    StaffUser,
    TherapistUser,
    actor_for,
)
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common import idempotency
from app.common.openapi import PathId
from app.common.routing import Router
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep
from app.programs import service
from app.programs.schemas import (
    CompletionRead,
    DraftSave,
    ExerciseWorkRead,
    ModuleDetailRead,
    ModulePathRead,
    ModuleStatusRead,
    PositionSave,
    ProgramDetail,
    ProgramSummary,
    SavedRead,
    SubmitBody,
    TailoringAction,
    TailoringChangeRead,
)

router = Router(tags=["programs"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in"},
    403: {"description": "Forbidden"},
    404: {"description": "Not found, or not yours to see"},
}
ModuleRef = Annotated[
    str, Path(max_length=160, description="Module key, or program:key for an added module")
]
ExerciseId = Annotated[str, Path(max_length=80)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


# The enrollment is resolved in a dependency, before any body is read, so a caller who may
# not see it always gets 404, never a validation error that would confirm it exists.


async def _any_enrollment(enrollment_id: PathId, principal: AnyUser, db: DbSession) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


async def _patient_enrollment(
    enrollment_id: PathId, principal: PatientUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


async def _therapist_enrollment(
    enrollment_id: PathId, principal: TherapistUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


async def _staff_enrollment(
    enrollment_id: PathId, principal: StaffUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


AnyEnrollment = Annotated[Enrollment, Depends(_any_enrollment)]
PatientEnrollment = Annotated[Enrollment, Depends(_patient_enrollment)]
TherapistEnrollment = Annotated[Enrollment, Depends(_therapist_enrollment)]
StaffEnrollment = Annotated[Enrollment, Depends(_staff_enrollment)]


def _problem(status_code: int, detail: Any, code: str, **extra: Any) -> JSONResponse:
    """An error body with extra top-level fields; the session still commits (audit rows)."""
    return JSONResponse(
        jsonable_encoder({"detail": detail, "code": code, **extra}), status_code=status_code
    )


def _stale(exc: service.StaleDraft) -> JSONResponse:
    return _problem(
        409,
        exc.detail,
        exc.code,
        current=(
            {
                "data": exc.current.data,
                "version": exc.current.version,
                "status": exc.current.status,
                "updated_at": exc.current.updated_at,
            }
            if exc.current
            else None
        ),
        yours={"data": exc.yours},
    )


# --- catalogue ---------------------------------------------------------------------------------


@router.get("/programs", response_model=list[ProgramSummary], responses=ERRORS)
async def list_programs(request: Request, principal: AnyUser) -> list[ProgramSummary]:
    """The nine programs with their length and number of modules."""
    return service.program_summaries(library_of(request))


@router.get("/programs/{slug}", response_model=ProgramDetail, responses=ERRORS)
async def get_program(slug: str, request: Request, principal: AnyUser) -> ProgramDetail:
    """One program: summary, pacing, questionnaires and its modules in order."""
    return service.program_detail(library_of(request), slug)


# --- the path and reading -------------------------------------------------------------------------


@router.get("/enrollments/{enrollment_id}/modules", response_model=ModulePathRead, responses=ERRORS)
async def list_modules(
    enrollment: AnyEnrollment,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
) -> ModulePathRead:
    """The patient's path: every module with its status and, when locked, why."""
    return await service.read_path(
        db,
        actor_for(request, principal),
        principal.role,
        enrollment,
        library_of(request),
        now=clock.now(),
    )


@router.get(
    "/enrollments/{enrollment_id}/modules/{module}",
    response_model=ModuleDetailRead,
    responses={**ERRORS, 403: {"description": "Locked (code module_locked) or forbidden"}},
)
async def get_module(
    enrollment: AnyEnrollment,
    module: ModuleRef,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    page: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> ModuleDetailRead:
    """One module's pages and exercises with the saved answers the caller may see.

    For the patient, opening logs ``module_opened`` and ``?page=N`` saves the reading
    position. Therapists see submitted answers; admins see only whether work exists.
    """
    view = await service.open_module(
        db,
        actor_for(request, principal),
        principal.role,
        enrollment,
        module,
        library_of(request),
        cipher,
        page=page,
        now=clock.now(),
    )
    return view.detail


@router.put(
    "/enrollments/{enrollment_id}/modules/{module}/position",
    response_model=ModuleStatusRead,
    responses=ERRORS,
)
async def save_position(
    enrollment: PatientEnrollment,
    module: ModuleRef,
    body: PositionSave,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
) -> ModuleStatusRead:
    """Remember the page the patient is on."""
    return await service.save_position(
        db,
        actor_for(request, principal),
        enrollment,
        module,
        library_of(request),
        page=body.page,
        now=clock.now(),
    )


@router.post(
    "/enrollments/{enrollment_id}/modules/{module}/complete",
    response_model=CompletionRead,
    responses={**ERRORS, 409: {"description": "Homework not submitted yet, or program ended"}},
)
async def complete_module(
    enrollment: PatientEnrollment,
    module: ModuleRef,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
) -> CompletionRead | Response:
    """Complete a module once its homework is submitted; the answer says what opens next."""
    try:
        return await service.complete_module(
            db,
            actor_for(request, principal),
            enrollment,
            module,
            library_of(request),
            now=clock.now(),
        )
    except service.HomeworkMissing as exc:
        return _problem(
            409,
            exc.detail,
            exc.code,
            missing=[{"id": spec.id, "title": spec.title} for spec in exc.missing],
        )


# --- exercises -------------------------------------------------------------------------------------


@router.get(
    "/enrollments/{enrollment_id}/exercises",
    response_model=list[ExerciseWorkRead],
    responses=ERRORS,
)
async def list_exercises(
    enrollment: AnyEnrollment,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    cipher: CipherDep,
) -> list[ExerciseWorkRead]:
    """The patient's work: all of it for the patient, submitted answers for the therapist,
    and for admins only which exercises were done (never the answers)."""
    return await service.read_work(
        db, actor_for(request, principal), principal.role, enrollment, library_of(request), cipher
    )


@router.put(
    "/enrollments/{enrollment_id}/exercises/{module}/{exercise}",
    response_model=SavedRead,
    responses={
        **ERRORS,
        409: {"description": "Stale version (code stale_draft): both versions are returned"},
        422: {"description": "Fields with problems; the draft was still saved as typed"},
    },
)
async def save_draft(
    enrollment: PatientEnrollment,
    module: ModuleRef,
    exercise: ExerciseId,
    body: DraftSave,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> SavedRead | Response:
    """Save a draft on top of the version the client last saw (0 for a new answer).

    A stale version gets 409 with the saved version and yours; nothing is overwritten.
    Values of the wrong type or out of range get 422 naming each field, and the draft is
    kept exactly as typed so nothing is lost.
    """
    try:
        outcome = await service.save_draft(
            db,
            actor_for(request, principal),
            enrollment,
            module,
            exercise,
            library_of(request),
            cipher,
            data=body.data,
            version=body.version,
            now=clock.now(),
        )
    except service.StaleDraft as exc:
        return _stale(exc)
    if outcome.errors:
        return _problem(
            422, outcome.errors, "invalid_exercise", saved=True, response=outcome.response
        )
    assert outcome.response is not None
    return SavedRead(response=outcome.response)


@router.post(
    "/enrollments/{enrollment_id}/exercises/{module}/{exercise}/submit",
    response_model=SavedRead,
    responses={
        **ERRORS,
        409: {"description": "Stale version (code stale_draft)"},
        422: {"description": "Fields with problems; what was sent is kept as a draft"},
    },
)
async def submit_exercise(
    enrollment: PatientEnrollment,
    module: ModuleRef,
    exercise: ExerciseId,
    body: SubmitBody,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    settings: SettingsDep,
) -> SavedRead | Response:
    """Submit an answer for the therapist to see; derived values (sleep efficiency,
    standard drinks …) are computed and stored with it."""
    try:
        outcome = await service.submit_exercise(
            db,
            actor_for(request, principal),
            enrollment,
            module,
            exercise,
            library_of(request),
            cipher,
            data=body.data,
            version=body.version,
            grams_per_standard_drink=settings.grams_per_standard_drink,
            now=clock.now(),
        )
    except service.StaleDraft as exc:
        return _stale(exc)
    if outcome.errors:
        return _problem(
            422,
            outcome.errors,
            "invalid_exercise",
            saved=outcome.response is not None and body.data is not None,
            response=outcome.response,
        )
    assert outcome.response is not None
    return SavedRead(response=outcome.response)


# --- tailoring --------------------------------------------------------------------------------------


@router.get(
    "/enrollments/{enrollment_id}/tailoring",
    response_model=list[TailoringChangeRead],
    responses=ERRORS,
)
async def list_tailoring(
    enrollment: StaffEnrollment, request: Request, principal: StaffUser, db: DbSession
) -> list[TailoringChangeRead]:
    """Every change made to this patient's path, newest first."""
    return await service.read_tailoring(db, actor_for(request, principal), enrollment)


@router.post(
    "/enrollments/{enrollment_id}/tailoring",
    status_code=201,
    response_model=TailoringChangeRead,
    responses={**ERRORS, 409: {"description": "Not possible in the path's current state"}},
)
async def tailor(
    enrollment: TherapistEnrollment,
    body: Annotated[TailoringAction, Body()],
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> TailoringChangeRead | Response:
    """Tailor the path: ``open_early``, ``hide``, ``unhide``, ``add_module`` (from another
    program), ``remove_module`` (added ones without submitted work) or ``set_pacing``."""
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    if (
        replayed := await idempotency.replay(
            db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
        )
    ) is not None:
        return replayed
    change = await service.apply_tailoring(
        db, actor_for(request, principal), enrollment, body, library_of(request), now=clock.now()
    )
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=change,
    )
    return change


@router.post(
    "/enrollments/{enrollment_id}/tailoring/{change_id}/revert",
    response_model=TailoringChangeRead,
    responses={**ERRORS, 409: {"description": "Already undone, or later changes stand in the way"}},
)
async def revert_tailoring(
    enrollment: TherapistEnrollment,
    change_id: PathId,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
) -> TailoringChangeRead:
    """Undo one tailoring change."""
    return await service.revert_tailoring(
        db,
        actor_for(request, principal),
        enrollment,
        change_id,
        library_of(request),
        now=clock.now(),
    )
