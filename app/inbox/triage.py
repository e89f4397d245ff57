"""The therapist's work list, ordered by what matters, and the response-promise clock.

Order: (1) unacknowledged risk alerts, (2) patient messages waiting for a reply, longest
first, with the time left against the clinic's promise, (3) submitted exercises awaiting
feedback, (4) patients who have gone quiet and have had no contact recently.

:func:`work_list` sends the same number of statements whatever the caseload: the alerts
(from the questionnaires service), one query over the caseload with each thread's last
message per side, one for the unanswered runs and one for their previews (when any
thread waits), one for exercises awaiting feedback, and one audit statement. The per-thread
lookups are correlated subqueries that walk ``ix_message_enrollment_sender_created``
backwards, so the cost follows the caseload, not the size of the message table. Exercise responses are read here directly: the
programs domain offers per-enrollment loaders only, and a work list needs one set-based
query over the whole caseload (read-only; no programs data is changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import Role, User
from app.accounts.policy import Prebuilt, Principal, scope_enrollments_for, scope_params
from app.adherence.models import EnrollmentRollup
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import OPEN_STATUSES, Enrollment, EnrollmentStatus, Patient
from app.clinics.schemas import PersonRef
from app.common.clock import zone_named
from app.common.crypto import FieldCipher
from app.config import Settings
from app.content.loader import ContentLibrary
from app.inbox.models import Message
from app.inbox.schemas import WorkItemRead, WorkListRead
from app.programs.catalogue import program_title
from app.programs.models import ExerciseResponse
from app.questionnaires import service as questionnaires

PREVIEW_CHARS = 140
FEEDBACK_LIMIT = 500
"""A safety cap on exercises listed; a caseload with more has bigger problems than paging."""

# The response-promise clock ------------------------------------------------------------------


def _is_working_day(day: date) -> bool:
    return day.weekday() < 5


def response_deadline(sent_at: datetime, working_days: int, tz: ZoneInfo) -> datetime:
    """When a reply is due: ``working_days`` working days after ``sent_at`` in the clinic's zone.

    Weekends do not count. A message sent on a working day is due at the same wall-clock
    time that many working days later (Friday 15:00 + 2 is Tuesday 15:00). A message sent
    at the weekend starts the clock on Monday at 00:00, so + 2 is Wednesday 00:00, the end
    of Tuesday. Wall-clock arithmetic goes through zoneinfo, so clock changes are handled.
    """
    local = sent_at.astimezone(tz)
    day = local.date()
    wall = local.time().replace(tzinfo=None)
    if not _is_working_day(day):
        while not _is_working_day(day):
            day += timedelta(days=1)
        wall = time(0)
    remaining = max(0, working_days)
    while remaining:
        day += timedelta(days=1)
        if _is_working_day(day):
            remaining -= 1
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def describe_time_left(seconds: int) -> str:
    """Plain words for the time left until a reply is due (negative: overdue)."""
    overdue = seconds < 0
    span = abs(seconds)
    hours = span // 3600
    if hours < 1:
        text = "less than an hour"
    elif hours < 48:
        text = f"{hours} h"
    else:
        text = f"{hours // 24} days"
    if overdue:
        return f"Overdue by {text}"
    return f"{text[0].upper()}{text[1:]} left"


# The work list -------------------------------------------------------------------------------


@dataclass
class CaseloadRow:
    """One enrollment in the caller's scope, with what the work list needs to know."""

    enrollment_id: int
    patient: PersonRef
    program: str
    program_title: str
    status: str
    therapist: PersonRef
    activated_at: datetime | None
    created_at: datetime
    last_activity_at: datetime | None
    last_therapist_message_at: datetime | None
    waiting_since: datetime | None
    waiting_count: int
    waiting_unread: int
    latest_waiting_id: int | None


@dataclass
class WorkList:
    items: list[WorkItemRead]
    caseload: list[CaseloadRow]
    generated_at: datetime
    zone: ZoneInfo
    counts: dict[str, int] = field(default_factory=dict)

    def read(self) -> WorkListRead:
        return WorkListRead(items=self.items, counts=self.counts, generated_at=self.generated_at)


def _scope_ids(role: Role, *, open_only: bool = False) -> Select[tuple[int]]:
    stmt = scope_enrollments_for(select(Enrollment.id), role, Enrollment)
    if open_only:
        stmt = stmt.where(Enrollment.status.in_(OPEN_STATUSES))
    return stmt


def _last(role: str, column: Any) -> Any:
    """The newest ``column`` of one side's messages in the outer query's enrollment.

    Correlated per enrollment, so each is a short backward scan of
    ``ix_message_enrollment_sender_created`` rather than an aggregate over the table.
    """
    return (
        select(func.max(column))
        .where(Message.enrollment_id == Enrollment.id, Message.sender_role == role)
        .correlate(Enrollment)
        .scalar_subquery()
    )


# The work list's statements are built once (per role where scoped) and sent with bind
# parameters: building them per request was a third of the work list's CPU.


def _caseload_query(role: Role) -> Any:
    """Every enrollment in scope with the last message of each side."""
    patient_user = aliased(User, name="patient_user")
    therapist = aliased(User, name="therapist")
    stmt: Any = (
        select(
            Enrollment.id,
            Enrollment.patient_id,
            patient_user.full_name,
            Enrollment.program,
            Enrollment.status,
            Enrollment.therapist_id,
            therapist.full_name,
            Enrollment.activated_at,
            Enrollment.created_at,
            EnrollmentRollup.last_activity_at,
            _last("therapist", Message.created_at),
            _last("patient", Message.created_at),
            _last("patient", Message.id),
        )
        .join(Patient, Patient.id == Enrollment.patient_id)
        .join(patient_user, patient_user.id == Patient.user_id)
        .join(therapist, therapist.id == Enrollment.therapist_id)
        .outerjoin(EnrollmentRollup, EnrollmentRollup.enrollment_id == Enrollment.id)
        .order_by(Enrollment.id)
    )
    return scope_enrollments_for(stmt, role, Enrollment)


_CASELOAD = Prebuilt(_caseload_query)


def _waiting_runs_query() -> Any:
    staff = aliased(Message, name="staff")
    answered_at = (
        select(func.max(staff.created_at))
        .where(staff.enrollment_id == Message.enrollment_id, staff.sender_role == "therapist")
        .correlate(Message)
        .scalar_subquery()
    )
    return (
        select(
            Message.enrollment_id,
            func.min(Message.created_at),
            func.count(),
            func.sum(case((Message.read_at.is_(None), 1), else_=0)),
        )
        .where(
            Message.enrollment_id.in_(bindparam("waiting", expanding=True)),
            Message.sender_role == "patient",
            or_(answered_at.is_(None), Message.created_at > answered_at),
        )
        .group_by(Message.enrollment_id)
    )


_WAITING_RUNS = _waiting_runs_query()


async def _waiting_runs(
    db: AsyncSession, rows: list[CaseloadRow]
) -> dict[int, tuple[datetime, int, int]]:
    """For threads whose last word is the patient's: (first unanswered at, count, unread)."""
    waiting = [r.enrollment_id for r in rows if r.latest_waiting_id is not None]
    if not waiting:
        return {}
    result = await db.execute(_WAITING_RUNS, {"waiting": waiting})
    return {eid: (since, int(n), int(unread or 0)) for eid, since, n, unread in result}


async def caseload(db: AsyncSession, principal: Principal) -> list[CaseloadRow]:
    """The caller's enrollments with their unanswered runs: two statements at most."""
    result: Any = await db.execute(_CASELOAD[principal.role], scope_params(principal))
    rows = []
    for r in result:
        last_staff, last_patient = r[10], r[11]
        waiting = last_patient is not None and (last_staff is None or last_patient > last_staff)
        rows.append(
            CaseloadRow(
                enrollment_id=r[0],
                patient=PersonRef(id=r[1], full_name=r[2]),
                program=r[3],
                program_title=program_title(r[3]),
                status=r[4],
                therapist=PersonRef(id=r[5], full_name=r[6]),
                activated_at=r[7],
                created_at=r[8],
                last_activity_at=r[9],
                last_therapist_message_at=last_staff,
                waiting_since=None,
                waiting_count=0,
                waiting_unread=0,
                latest_waiting_id=r[12] if waiting else None,
            )
        )
    runs = await _waiting_runs(db, rows)
    for row in rows:
        if row.enrollment_id in runs:
            row.waiting_since, row.waiting_count, row.waiting_unread = runs[row.enrollment_id]
    return rows


def preview(text: str) -> str:
    """The first words of a message on one line, for the work list."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1].rstrip() + "…"


_PREVIEWS = select(Message.enrollment_id, Message.body_encrypted).where(
    Message.id.in_(bindparam("ids", expanding=True))
)


async def _previews(
    db: AsyncSession, rows: list[CaseloadRow], cipher: FieldCipher
) -> dict[int, str]:
    ids = [r.latest_waiting_id for r in rows if r.latest_waiting_id is not None]
    if not ids:
        return {}
    result = await db.execute(_PREVIEWS, {"ids": ids})
    previews = {}
    for enrollment_id, encrypted in result:
        try:
            previews[enrollment_id] = preview(cipher.decrypt(encrypted))
        except ValueError:
            previews[enrollment_id] = "(This message cannot be shown.)"
    return previews


def exercise_titles(
    library: ContentLibrary, program: str, module_key: str, exercise_id: str
) -> tuple[str, str]:
    """(exercise title, module title) from the content, falling back to the raw keys."""
    source = library.programs.get(program)
    module = source.modules.get(module_key) if source else None
    if module is None:
        return exercise_id, module_key
    try:
        return module.exercise(exercise_id).title, module.title
    except KeyError:
        return exercise_id, module.title


def _awaiting_feedback_query(role: Role) -> Any:
    """Submitted exercises with no therapist message anchored to them since the submission."""
    feedback_since = (
        select(Message.id)
        .where(
            Message.exercise_response_id == ExerciseResponse.id,
            Message.sender_role == "therapist",
            Message.created_at >= ExerciseResponse.submitted_at,
        )
        .correlate(ExerciseResponse)
        .exists()
    )
    return (
        select(
            ExerciseResponse.id,
            ExerciseResponse.enrollment_id,
            ExerciseResponse.program,
            ExerciseResponse.module_key,
            ExerciseResponse.exercise_id,
            ExerciseResponse.submitted_at,
        )
        .where(
            ExerciseResponse.enrollment_id.in_(_scope_ids(role, open_only=True)),
            ExerciseResponse.status == "submitted",
            ExerciseResponse.submitted_at.is_not(None),
            ~feedback_since,
        )
        .order_by(ExerciseResponse.submitted_at, ExerciseResponse.id)
        .limit(FEEDBACK_LIMIT)
    )


_AWAITING_FEEDBACK = Prebuilt(_awaiting_feedback_query)


async def _awaiting_feedback(
    db: AsyncSession, principal: Principal
) -> list[tuple[int, int, str, str, str, datetime]]:
    rows = await db.execute(_AWAITING_FEEDBACK[principal.role], scope_params(principal))
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows if r[5] is not None]


def _covering_for(row: CaseloadRow, principal: Principal) -> PersonRef | None:
    return row.therapist if row.therapist.id != principal.user_id else None


async def work_list(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
    settings: Settings,
    now: datetime,
) -> WorkList:
    """The triaged work list for a therapist (their own patients and any they cover), with
    deadlines in the clinic's zone, which came with the session lookup."""
    tz = zone_named(principal.clinic_timezone)
    alerts = []
    if principal.role is Role.THERAPIST:
        alerts = await questionnaires.list_alerts(
            db, principal, actor, cipher=None, status="open", now=now
        )
    rows = await caseload(db, principal)
    by_id = {row.enrollment_id: row for row in rows}
    open_rows = [r for r in rows if r.status in OPEN_STATUSES]
    waiting_rows = sorted(
        (r for r in open_rows if r.waiting_since is not None),
        key=lambda r: (r.waiting_since, r.enrollment_id),
    )
    previews = await _previews(db, waiting_rows, cipher)
    feedback = await _awaiting_feedback(db, principal)

    items: list[WorkItemRead] = []
    for alert in alerts:
        row = by_id.get(alert.enrollment_id)
        items.append(
            WorkItemRead(
                kind="alert",
                enrollment_id=alert.enrollment_id,
                patient=alert.patient,
                covering_for=_covering_for(row, principal) if row else None,
                since=alert.created_at,
                alert=alert,
            )
        )
    for row in waiting_rows:
        assert row.waiting_since is not None
        due = response_deadline(row.waiting_since, settings.response_promise_working_days, tz)
        items.append(
            WorkItemRead(
                kind="reply",
                enrollment_id=row.enrollment_id,
                patient=row.patient,
                covering_for=_covering_for(row, principal),
                since=row.waiting_since,
                waiting_messages=row.waiting_count,
                unread_messages=row.waiting_unread,
                preview=previews.get(row.enrollment_id),
                due_at=due,
                seconds_left=int((due - now).total_seconds()),
            )
        )
    for response_id, enrollment_id, program, module_key, exercise_id, submitted_at in feedback:
        row = by_id.get(enrollment_id)
        if row is None:
            continue
        exercise_title, module_title = exercise_titles(library, program, module_key, exercise_id)
        items.append(
            WorkItemRead(
                kind="feedback",
                enrollment_id=enrollment_id,
                patient=row.patient,
                covering_for=_covering_for(row, principal),
                since=submitted_at,
                exercise_response_id=response_id,
                exercise_title=exercise_title,
                module_title=module_title,
            )
        )
    quiet_before = now - timedelta(days=settings.inbox_quiet_after_days)
    contact_before = now - timedelta(days=settings.inbox_contact_within_days)
    quiet: list[tuple[datetime, CaseloadRow]] = []
    for row in open_rows:
        if row.status != EnrollmentStatus.ACTIVE or row.waiting_since is not None:
            continue
        last = row.last_activity_at or row.activated_at or row.created_at
        contact = row.last_therapist_message_at
        if last <= quiet_before and (contact is None or contact <= contact_before):
            quiet.append((last, row))
    quiet.sort(key=lambda pair: (pair[0], pair[1].enrollment_id))
    for last, row in quiet:
        items.append(
            WorkItemRead(
                kind="quiet",
                enrollment_id=row.enrollment_id,
                patient=row.patient,
                covering_for=_covering_for(row, principal),
                since=last,
                days_quiet=(now - last).days,
                last_contact_at=row.last_therapist_message_at,
            )
        )
    # The list names every patient in scope (the caseload table), so each gets a read entry.
    await audit.record_many(
        db,
        actor,
        action="list",
        resource_type="inbox",
        targets=[(row.enrollment_id, row.patient.id) for row in rows],
        at=now,
    )
    counts = dict.fromkeys(("alert", "reply", "feedback", "quiet"), 0)
    for item in items:
        counts[item.kind] += 1
    return WorkList(items=items, caseload=rows, generated_at=now, zone=tz, counts=counts)
