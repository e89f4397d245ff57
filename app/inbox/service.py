"""Threads and messages: sending, reading with receipts, feedback anchors, counts.

A thread is an enrollment. Its patient and the therapists who may see the enrollment
(the assigned one, or a colleague covering an absence) take part; clinic admins see that
messages exist and when, never what they say. Bodies are encrypted with the field cipher
and decrypted only for the two sides of the conversation.

Services take an ``AsyncSession`` and plain values, flush but never commit, and add one
audit row per read or write of patient data.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import Role, User
from app.accounts.policy import (
    Prebuilt,
    Principal,
    can_access_enrollment,
    scope_enrollments_for,
)
from app.adherence import service as adherence
from app.adherence.service import EventKind
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics import service as clinics_service
from app.clinics.models import OPEN_STATUSES, Enrollment, EnrollmentStatus
from app.clinics.schemas import PersonRef
from app.common.clock import zone_named
from app.common.crypto import FieldCipher
from app.common.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.common.failpoints import failpoint
from app.config import Settings
from app.content.loader import ContentLibrary
from app.inbox.models import FUNCTIONS, Message
from app.inbox.schemas import (
    AnchorRead,
    MessageCreate,
    MessagePage,
    MessageRead,
    MessageStatsRead,
    TherapistMessageStats,
)
from app.inbox.triage import caseload, exercise_titles, response_deadline
from app.programs.models import ExerciseResponse
from app.questionnaires.models import QuestionnaireResponse

ENDED = frozenset({EnrollmentStatus.COMPLETED, EnrollmentStatus.DROPPED, EnrollmentStatus.CLOSED})
PAGE_SIZE = 100


def other_side(principal: Principal) -> str | None:
    """Whose messages the caller receives (and so may mark read); admins receive none."""
    if principal.role is Role.PATIENT:
        return "therapist"
    if principal.role is Role.THERAPIST:
        return "patient"
    return None


def clean_body(text: str, *, max_length: int) -> str:
    """The body as it will be stored: line endings unified, surrounding blank space trimmed.

    Empty or over-long text is a 422 naming the ``body`` field; the caller keeps what was typed.
    """
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not body:
        raise Invalid("Write a message before sending.", field="body", code="empty_message")
    if len(body) > max_length:
        raise Invalid(
            f"This message is {len(body):,} characters long; the limit is {max_length:,}. "
            "Please shorten it or send it in two parts.",
            field="body",
            code="message_too_long",
        )
    return body


# Reading ------------------------------------------------------------------------------------


def _message_query() -> Any:
    sender = aliased(User, name="sender")
    return (
        select(
            Message,
            sender.full_name,
            ExerciseResponse.program,
            ExerciseResponse.module_key,
            ExerciseResponse.exercise_id,
            QuestionnaireResponse.instrument,
            QuestionnaireResponse.occasion,
            QuestionnaireResponse.week,
        )
        .outerjoin(sender, sender.id == Message.sender_id)
        .outerjoin(ExerciseResponse, ExerciseResponse.id == Message.exercise_response_id)
        .outerjoin(
            QuestionnaireResponse, QuestionnaireResponse.id == Message.questionnaire_response_id
        )
    )


def occasion_label(occasion: str, week: int) -> str:
    if occasion == "baseline":
        return "start"
    if occasion == "end":
        return "end"
    return f"week {week}"


def _anchor(library: ContentLibrary, row: Any) -> AnchorRead | None:
    message: Message = row[0]
    if message.exercise_response_id is not None and row[2] is not None:
        exercise_title, module_title = exercise_titles(library, row[2], row[3], row[4])
        return AnchorRead(
            kind="exercise",
            id=message.exercise_response_id,
            title=f"{exercise_title} ({module_title})",
        )
    if message.questionnaire_response_id is not None and row[5] is not None:
        instrument = library.instruments.get(row[5])
        title = instrument.title if instrument else row[5]
        return AnchorRead(
            kind="questionnaire",
            id=message.questionnaire_response_id,
            title=f"{title}, {occasion_label(row[6], row[7])}",
        )
    return None


def _decrypt(cipher: FieldCipher, message: Message) -> str | None:
    try:
        return cipher.decrypt(message.body_encrypted)
    except ValueError:
        return None


def _read(
    row: Any,
    library: ContentLibrary,
    cipher: FieldCipher | None,
    *,
    read_at: datetime | None = None,
) -> MessageRead:
    message: Message = row[0]
    return MessageRead(
        id=message.id,
        enrollment_id=message.enrollment_id,
        sender=(
            PersonRef(id=message.sender_id, full_name=row[1])
            if message.sender_id is not None and row[1]
            else None
        ),
        sender_role=message.sender_role,
        body=_decrypt(cipher, message) if cipher is not None else None,
        functions=message.functions,
        anchor=_anchor(library, row),
        created_at=message.created_at,
        read_at=read_at or message.read_at,
    )


@dataclass
class Thread:
    """A window of a thread, oldest first, with which messages were new to the reader."""

    page: MessagePage
    new_ids: set[int] = field(default_factory=set)


async def _mark_read(
    db: AsyncSession,
    principal: Principal,
    enrollment: Enrollment,
    ids: list[int],
    *,
    feedback: int,
    now: datetime,
) -> None:
    """Set the read receipt on ``ids`` (still unread) and log the reading once."""
    if not ids:
        return
    await db.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.read_at.is_(None))
        .values(read_at=now, read_by_id=principal.user_id)
        .execution_options(synchronize_session=False)
    )
    role = principal.role.value
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=EventKind.MESSAGE_READ,
        at=now,
        actor_role=role,
        detail={"messages": len(ids)},
    )
    if feedback and principal.role is Role.PATIENT:
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=EventKind.FEEDBACK_READ,
            at=now,
            actor_role=role,
            detail={"messages": feedback},
        )


async def read_thread(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    enrollment: Enrollment,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
    now: datetime,
    before: int | None = None,
    limit: int = PAGE_SIZE,
    mark_read: bool = False,
) -> Thread:
    """The latest ``limit`` messages (or those before message ``before``), oldest first.

    With ``mark_read`` the other side's unread messages shown get their read receipt,
    and ``message_read`` (plus ``feedback_read`` for anchored feedback a patient reads) is
    logged once. Clinic admins get the same list without bodies and mark nothing.
    Three statements to read, whatever the thread's length.
    """
    stmt = _message_query().where(Message.enrollment_id == enrollment.id)
    if before is not None:
        cursor = select(Message.created_at).where(
            Message.id == before, Message.enrollment_id == enrollment.id
        )
        cursor_at = cursor.scalar_subquery()
        stmt = stmt.where(
            or_(
                Message.created_at < cursor_at,
                and_(Message.created_at == cursor_at, Message.id < before),
            )
        )
    rows = list(
        await db.execute(
            stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
        )
    )
    has_earlier = len(rows) > limit
    rows = list(reversed(rows[:limit]))
    participant = principal.role is not Role.ADMIN
    receiving = other_side(principal)
    new_ids = {
        row[0].id
        for row in rows
        if receiving is not None and row[0].sender_role == receiving and row[0].read_at is None
    }
    if mark_read and participant and new_ids:
        feedback = sum(
            1
            for row in rows
            if row[0].id in new_ids
            and (row[0].exercise_response_id or row[0].questionnaire_response_id)
        )
        await _mark_read(db, principal, enrollment, sorted(new_ids), feedback=feedback, now=now)
    items = [
        _read(
            row,
            library,
            cipher if participant else None,
            read_at=now if mark_read and participant and row[0].id in new_ids else None,
        )
        for row in rows
    ]
    await audit.record(
        db,
        actor,
        action="read" if participant else "list",
        resource_type="message_thread" if participant else "message_metadata",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
        at=now,
    )
    return Thread(
        page=MessagePage(enrollment_id=enrollment.id, items=items, has_earlier=has_earlier),
        new_ids=new_ids,
    )


async def mark_read(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    message_id: int,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
    now: datetime,
) -> MessageRead:
    """ "I have seen this": receipts for this message and the other side's earlier unread ones.

    Marking your own message, or marking as a clinic admin, changes nothing (the answer is
    the message as it stands). Anyone who may not see the thread gets 404.
    """
    found = (
        await db.execute(
            select(Message, Enrollment)
            .join(Enrollment, Enrollment.id == Message.enrollment_id)
            .where(Message.id == message_id)
        )
    ).first()
    if found is None or not can_access_enrollment(principal, found[1]):
        raise NotFound("Message not found.")
    message, enrollment = found
    receiving = other_side(principal)
    read_at = None
    if receiving is not None and message.sender_role == receiving and message.read_at is None:
        pending = list(
            await db.execute(
                select(
                    Message.id, Message.exercise_response_id, Message.questionnaire_response_id
                ).where(
                    Message.enrollment_id == enrollment.id,
                    Message.sender_role == receiving,
                    Message.read_at.is_(None),
                    Message.id <= message.id,
                )
            )
        )
        feedback = sum(1 for _, exercise, questionnaire in pending if exercise or questionnaire)
        await _mark_read(
            db, principal, enrollment, [p[0] for p in pending], feedback=feedback, now=now
        )
        read_at = now
    participant = principal.role is not Role.ADMIN
    await audit.record(
        db,
        actor,
        action="read" if participant else "list",
        resource_type="message" if participant else "message_metadata",
        resource_id=message.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
        at=now,
    )
    row = (await db.execute(_message_query().where(Message.id == message.id))).one()
    return _read(row, library, cipher if participant else None, read_at=read_at)


def receipt(message: MessageRead) -> dict[str, int]:
    """What an idempotency record keeps of a sent message: its id, never its text, so the
    body stays encrypted at rest; a replay reads the message again (:func:`message_read`)."""
    return {"id": message.id}


async def message_read(
    db: AsyncSession,
    principal: Principal,
    message_id: int,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
) -> MessageRead:
    """One message as the caller may see it (404 if they may not)."""
    row = (
        await db.execute(
            _message_query()
            .add_columns(Enrollment)
            .join(Enrollment, Enrollment.id == Message.enrollment_id)
            .where(Message.id == message_id)
        )
    ).first()
    if row is None or not can_access_enrollment(principal, row[-1]):
        raise NotFound("Message not found.")
    return _read(row, library, cipher if principal.role is not Role.ADMIN else None)


# Writing ------------------------------------------------------------------------------------


async def _check_anchor(
    db: AsyncSession, principal: Principal, enrollment: Enrollment, data: MessageCreate
) -> None:
    """An anchor must be this enrollment's own work (and, for therapists, submitted work)."""
    if data.exercise_response_id is not None:
        response = await db.get(ExerciseResponse, data.exercise_response_id)
        if (
            response is None
            or response.enrollment_id != enrollment.id
            or (principal.role is Role.THERAPIST and response.status != "submitted")
        ):
            raise Invalid(
                "Choose one of this patient's submitted exercises to anchor the message to.",
                field="anchor",
                code="invalid_anchor",
            )
    if data.questionnaire_response_id is not None:
        answer = await db.get(QuestionnaireResponse, data.questionnaire_response_id)
        if answer is None or answer.enrollment_id != enrollment.id:
            raise Invalid(
                "Choose one of this patient's questionnaires to anchor the message to.",
                field="anchor",
                code="invalid_anchor",
            )


async def send_message(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    enrollment: Enrollment,
    data: MessageCreate,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
    settings: Settings,
    now: datetime,
) -> MessageRead:
    """Add a message to the thread, encrypted, logged as ``message_sent`` and audited."""
    if principal.role is Role.ADMIN:
        raise PermissionDenied(
            "Clinic admins see message counts and response times, not conversations.",
            code="admin_cannot_message",
        )
    if enrollment.status in ENDED:
        raise Conflict(
            "This treatment has ended, so new messages can no longer be sent. "
            "Everything written so far is kept.",
            code="enrollment_ended",
        )
    body = clean_body(data.body, max_length=settings.message_max_length)
    functions = set(data.functions)
    if functions and principal.role is not Role.THERAPIST:
        raise Invalid("Only therapists tag their messages.", field="functions")
    await _check_anchor(db, principal, enrollment, data)
    message = Message(
        enrollment_id=enrollment.id,
        sender_id=principal.user_id,
        sender_role=principal.role.value,
        body_encrypted=cipher.encrypt(body),
        exercise_response_id=data.exercise_response_id,
        questionnaire_response_id=data.questionnaire_response_id,
        created_at=now,
        **{f"tag_{name}": name in functions for name in FUNCTIONS},
    )
    db.add(message)
    await db.flush()
    await failpoint("message.after_insert")
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=EventKind.MESSAGE_SENT,
        at=now,
        actor_role=principal.role.value,
        detail={
            "message_id": message.id,
            "functions": message.functions,
            "anchored": bool(data.exercise_response_id or data.questionnaire_response_id),
        },
    )
    await failpoint("message.after_event")
    await audit.record(
        db,
        actor,
        action="create",
        resource_type="message",
        resource_id=message.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
        at=now,
    )
    await failpoint("message.after_audit")
    row = (await db.execute(_message_query().where(Message.id == message.id))).one()
    return _read(row, library, cipher)


# Counts and feedback beside exercises -----------------------------------------------------------


def _unread_query(role: Role) -> Any:
    """Messages from the other side not yet opened, in the caller's enrollments."""
    sender = "therapist" if role is Role.PATIENT else "patient"
    stmt = (
        select(func.count())
        .select_from(Message)
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(Message.read_at.is_(None), Message.sender_role == sender)
    )
    return scope_enrollments_for(stmt, role, Enrollment)


# Every page of a patient or therapist shows the badge, so the statement is built once.
_UNREAD: Prebuilt[Role] = Prebuilt(_unread_query)
_UNREAD_COLUMN: Prebuilt[Role] = Prebuilt(lambda role: _UNREAD[role].scalar_subquery())


def unread_count_column(principal: Principal) -> Any | None:
    """Messages waiting to be opened by the caller, as a column for the navigation badge
    (bind with :func:`scope_params`), so a page reads it in the same statement as the
    other badges; None for callers without a thread."""
    if principal.role is Role.PATIENT and principal.patient_id is None:
        return None
    if principal.role not in (Role.PATIENT, Role.THERAPIST):
        return None
    return _UNREAD_COLUMN[principal.role]


@dataclass(frozen=True)
class Feedback:
    """A therapist's message anchored to one exercise, shown beside that exercise."""

    id: int
    sender: str | None
    body: str | None
    created_at: datetime
    is_new: bool


async def exercise_feedback(
    db: AsyncSession,
    principal: Principal,
    enrollment: Enrollment,
    *,
    program: str,
    module_key: str,
    cipher: FieldCipher,
    now: datetime,
) -> dict[str, list[Feedback]]:
    """Feedback on the exercises of one module, by exercise id, oldest first.

    For the patient, showing it is reading it: receipts are set and ``feedback_read`` is
    logged once. The page that shows it records its own audit row.
    """
    sender = aliased(User, name="sender")
    rows = list(
        await db.execute(
            select(Message, sender.full_name, ExerciseResponse.exercise_id)
            .join(ExerciseResponse, ExerciseResponse.id == Message.exercise_response_id)
            .outerjoin(sender, sender.id == Message.sender_id)
            .where(
                Message.enrollment_id == enrollment.id,
                Message.sender_role == "therapist",
                ExerciseResponse.enrollment_id == enrollment.id,
                ExerciseResponse.program == program,
                ExerciseResponse.module_key == module_key,
            )
            .order_by(Message.created_at, Message.id)
        )
    )
    new_ids = [m.id for m, _, _ in rows if m.read_at is None]
    if principal.role is Role.PATIENT and new_ids:
        await db.execute(
            update(Message)
            .where(Message.id.in_(new_ids), Message.read_at.is_(None))
            .values(read_at=now, read_by_id=principal.user_id)
            .execution_options(synchronize_session=False)
        )
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=EventKind.FEEDBACK_READ,
            at=now,
            actor_role="patient",
            detail={"messages": len(new_ids), "where": "exercise"},
        )
    result: dict[str, list[Feedback]] = defaultdict(list)
    for message, name, exercise_id in rows:
        result[exercise_id].append(
            Feedback(
                id=message.id,
                sender=name,
                body=_decrypt(cipher, message),
                created_at=message.created_at,
                is_new=message.id in new_ids,
            )
        )
    return dict(result)


# Clinic statistics ----------------------------------------------------------------------------


async def message_stats(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    *,
    settings: Settings,
    days: int,
    now: datetime,
) -> MessageStatsRead:
    """Per therapist: messages, replies, median reply time, replies within the promise,
    threads waiting now and gesture tags. Reads timestamps and tags only, never a body.

    A reply answers the patient's first unanswered message of the period; it counts for
    whoever sent it (a covering colleague too). Threads waiting now count for the assigned
    therapist, however long they have waited. Four statements whatever the clinic's size.
    """
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    tz = zone_named(clinic.timezone)
    since = now - timedelta(days=days)
    therapists = await clinics_service.list_therapists(db, principal.clinic_id)
    rows = await db.execute(
        select(
            Message.enrollment_id,
            Message.sender_role,
            Message.sender_id,
            Message.created_at,
            Message.tag_autonomy,
            Message.tag_alliance,
            Message.tag_emotion_regulation,
            Enrollment.therapist_id,
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(Enrollment.clinic_id == principal.clinic_id, Message.created_at >= since)
        .order_by(Message.enrollment_id, Message.created_at, Message.id)
    )
    sent: dict[int, int] = defaultdict(int)
    received: dict[int, int] = defaultdict(int)
    reply_hours: dict[int, list[float]] = defaultdict(list)
    on_time: dict[int, int] = defaultdict(int)
    waiting: dict[int, int] = defaultdict(int)
    overdue: dict[int, int] = defaultdict(int)
    tags: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FUNCTIONS, 0))
    open_since: dict[int, datetime] = {}
    for enrollment_id, role, sender_id, at, autonomy, alliance, regulation, owner in rows:
        if role == "patient":
            received[owner] += 1
            open_since.setdefault(enrollment_id, at)
            continue
        if sender_id is None:
            continue
        sent[sender_id] += 1
        for name, flag in zip(FUNCTIONS, (autonomy, alliance, regulation), strict=True):
            if flag:
                tags[sender_id][name] += 1
        started = open_since.pop(enrollment_id, None)
        if started is not None:
            reply_hours[sender_id].append((at - started).total_seconds() / 3600)
            due = response_deadline(started, settings.response_promise_working_days, tz)
            if at <= due:
                on_time[sender_id] += 1
    # Threads waiting now, however long ago they started (the period does not limit these).
    for row in await caseload(db, principal):
        if row.waiting_since is None or row.status not in OPEN_STATUSES:
            continue
        waiting[row.therapist.id] += 1
        due = response_deadline(row.waiting_since, settings.response_promise_working_days, tz)
        if due < now:
            overdue[row.therapist.id] += 1
    await audit.record(
        db,
        actor,
        action="read",
        resource_type="message_stats",
        resource_id=principal.clinic_id,
        clinic_id=principal.clinic_id,
        at=now,
    )
    return MessageStatsRead(
        days=days,
        since=since,
        promise_working_days=settings.response_promise_working_days,
        therapists=[
            TherapistMessageStats(
                therapist=PersonRef(id=t.id, full_name=t.full_name),
                messages_sent=sent[t.id],
                patient_messages=received[t.id],
                replies=len(reply_hours[t.id]),
                median_reply_hours=(
                    round(statistics.median(reply_hours[t.id]), 1) if reply_hours[t.id] else None
                ),
                replies_within_promise=on_time[t.id],
                waiting_now=waiting[t.id],
                overdue_now=overdue[t.id],
                functions=tags[t.id],
            )
            for t in therapists
        ],
    )
