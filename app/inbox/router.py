"""JSON API: threads and messages, read receipts, the work list, snippets, absences, stats."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.accounts.dependencies import AdminUser, AnyUser, TherapistUser, actor_for
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common import idempotency
from app.common.openapi import ERRORS, with_errors
from app.common.routing import Router
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep
from app.inbox import context, handover, service, snippets, triage
from app.inbox.schemas import (
    MAX_ID,
    AbsenceCreate,
    AbsenceRead,
    MessageCreate,
    MessagePage,
    MessageRead,
    MessageStatsRead,
    SnippetRead,
    SnippetUpdate,
    SnippetWrite,
    WorkListRead,
)

router = Router(tags=["inbox"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


# The enrollment is resolved before the body is read, so a caller who may not see it always
# gets 404, never a validation error that would confirm it exists.
async def _thread_enrollment(enrollment_id: Id, principal: AnyUser, db: DbSession) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


ThreadEnrollment = Annotated[Enrollment, Depends(_thread_enrollment)]


@router.get(
    "/enrollments/{enrollment_id}/messages",
    response_model=MessagePage,
    responses=with_errors(e404="Not found, or not yours to see"),
)
async def list_messages(
    enrollment: ThreadEnrollment,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A message id: older ones")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """The thread, oldest first. Clinic admins get the same list with every ``body`` null.

    Reading over the API does not set read receipts; ``POST /messages/{id}/read`` does.
    """
    now = clock.now()
    thread = await service.read_thread(
        db,
        principal,
        actor_for(request, principal),
        enrollment,
        library=library_of(request),
        cipher=cipher,
        now=now,
        before=before,
        limit=limit,
    )
    cover = await handover.cover_now(db, enrollment.therapist_id, now=now)
    thread.page.covering = cover.covering if cover else None
    return thread.page


@router.post(
    "/enrollments/{enrollment_id}/messages",
    status_code=201,
    response_model=MessageRead,
    responses=with_errors(
        e404="Not found, or not yours to see",
        e409="The treatment has ended",
        e403="Clinic admins do not send messages",
    ),
)
async def send_message(
    enrollment: ThreadEnrollment,
    body: MessageCreate,
    request: Request,
    response: Response,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> MessageRead | Response:
    """Send a plain-text message (therapists may tag it and anchor it to the patient's work).

    Empty or longer than the clinic's limit (``TUKI_MESSAGE_MAX_LENGTH``, 5,000 by
    default) is a 422. A retry with the same ``Idempotency-Key`` creates nothing new.
    """
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    replayed = await idempotency.replay(
        db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
    )
    if replayed is not None:
        # The record holds the message id only (never the text): read the message again.
        first = await service.message_read(
            db,
            principal,
            int(json.loads(bytes(replayed.body))["id"]),
            library=library_of(request),
            cipher=cipher,
        )
        return JSONResponse(
            jsonable_encoder(first), status_code=201, headers={"Idempotent-Replayed": "true"}
        )
    result = await service.send_message(
        db,
        principal,
        actor_for(request, principal),
        enrollment,
        body,
        library=library_of(request),
        cipher=cipher,
        settings=settings,
        now=clock.now(),
    )
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=service.receipt(result),
    )
    response.headers["Location"] = f"/api/v1/enrollments/{enrollment.id}/messages"
    return result


@router.post(
    "/messages/{message_id}/read",
    response_model=MessageRead,
    responses=with_errors(e404="Not found, or not yours to see"),
)
async def mark_read(
    message_id: Id,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> MessageRead:
    """Read receipt for this message and the other side's earlier unread ones in the thread.

    Marking your own message, or marking as a clinic admin, changes nothing.
    """
    return await service.mark_read(
        db,
        principal,
        actor_for(request, principal),
        message_id,
        library=library_of(request),
        cipher=cipher,
        now=clock.now(),
    )


@router.get("/inbox", response_model=WorkListRead, responses=ERRORS)
async def work_list(
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    settings: SettingsDep,
) -> WorkListRead:
    """The therapist's work: alerts, replies due (longest waiting first), feedback, quiet patients."""
    result = await triage.work_list(
        db,
        principal,
        actor_for(request, principal),
        library=library_of(request),
        cipher=cipher,
        settings=settings,
        now=clock.now(),
    )
    return result.read()


@router.get("/inbox/stats", response_model=MessageStatsRead, responses=ERRORS)
async def message_stats(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> MessageStatsRead:
    """Message counts and response times per therapist. Never message bodies."""
    return await service.message_stats(
        db, principal, actor_for(request, principal), settings=settings, days=days, now=clock.now()
    )


# Snippets -----------------------------------------------------------------------------------


@router.get(
    "/snippets",
    response_model=list[SnippetRead],
    responses=with_errors(e404="Enrollment not found"),
)
async def list_snippets(
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    enrollment_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Fill in the placeholders for this patient")
    ] = None,
) -> list[SnippetRead]:
    """Your own snippets, your clinic's shared ones and the built-in ones, by function."""
    values = None
    if enrollment_id is not None:
        enrollment = await clinics_service.get_enrollment(db, principal, enrollment_id)
        values = await context.placeholder_values(
            db,
            enrollment,
            library=library_of(request),
            therapist_name=principal.full_name,
            now=clock.now(),
        )
    return await snippets.list_snippets(db, principal, values=values)


@router.post(
    "/snippets",
    status_code=201,
    response_model=SnippetRead,
    responses=with_errors(),
)
async def create_snippet(
    body: SnippetWrite,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> SnippetRead | Response:
    """Save a snippet. Placeholders other than {first_name}, {module_title} and
    {therapist_name} are refused with 422."""
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    if (
        replayed := await idempotency.replay(
            db, user_id=principal.user_id, key=idempotency_key, request_fingerprint=fp
        )
    ) is not None:
        return replayed
    result = await snippets.create_snippet(
        db, principal, actor_for(request, principal), body, now=clock.now()
    )
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=idempotency_key,
        request_fingerprint=fp,
        status_code=201,
        body=result,
    )
    return result


@router.patch(
    "/snippets/{snippet_id}",
    response_model=SnippetRead,
    responses=with_errors(e404="Not found, or not yours to change"),
)
async def update_snippet(
    snippet_id: Id,
    body: SnippetUpdate,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
) -> SnippetRead:
    """Change one of your own snippets."""
    return await snippets.update_snippet(
        db, principal, actor_for(request, principal), snippet_id, body, now=clock.now()
    )


@router.delete(
    "/snippets/{snippet_id}",
    status_code=204,
    responses=with_errors(e404="Not found, or not yours to change"),
)
async def delete_snippet(
    snippet_id: Id, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    """Delete one of your own snippets."""
    await snippets.delete_snippet(
        db, principal, actor_for(request, principal), snippet_id, now=clock.now()
    )
    return Response(status_code=204)


# Absences -----------------------------------------------------------------------------------


@router.get("/absences", response_model=list[AbsenceRead], responses=ERRORS)
async def list_absences(
    principal: TherapistUser, db: DbSession, clock: ClockDep
) -> list[AbsenceRead]:
    """Your current and upcoming absences, and those you cover for colleagues."""
    return await handover.list_absences(db, principal, now=clock.now())


@router.post(
    "/absences",
    status_code=201,
    response_model=AbsenceRead,
    responses=with_errors(e409="Overlaps another absence"),
)
async def create_absence(
    body: AbsenceCreate, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> AbsenceRead:
    """Be away from ``starts_at`` to ``ends_at``; the colleague covers your patients meanwhile."""
    return await handover.set_absence(
        db, principal, actor_for(request, principal), body, now=clock.now()
    )


@router.delete(
    "/absences/{absence_id}",
    status_code=204,
    responses=with_errors(e404="Not found", e409="Already over"),
)
async def end_absence(
    absence_id: Id, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    """Come back early: an active absence ends now; an upcoming one is removed."""
    await handover.end_absence(
        db, principal, actor_for(request, principal), absence_id, now=clock.now()
    )
    return Response(status_code=204)
