"""Read side: one enrollment's adherence, a therapist's caseload, a timeline, the clinic report.

Every query reads the rollup, ``support_wait`` and indexed per-enrollment lookups; none
scans ``adherence_event`` (the timeline reads one enrollment's events through the
``(enrollment_id, at)`` index). The clinic report sends a fixed number of grouped
statements whatever the clinic's size and turns the small results into figures in Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import Role, User
from app.accounts.policy import Principal, can_access_enrollment, scope_enrollments
from app.adherence import metrics
from app.adherence.models import (
    AdherenceEvent,
    AdherenceThreshold,
    EnrollmentRollup,
    SupportWait,
)
from app.adherence.schemas import (
    AdherenceReport,
    EnrollmentAdherenceRead,
    GroupReport,
    OutcomeRead,
    ReportFiltersRead,
    RetentionRead,
    SupportRead,
    SurvivalRead,
    ThresholdsRead,
)
from app.adherence.service import GESTURES
from app.adherence.sql import DAY, WEEK, business_seconds, epoch_seconds, working_seconds
from app.adherence.status import (
    STATUS_LABELS,
    STATUS_ORDER,
    AdherenceStatus,
    Thresholds,
    cached_columns,
    classify,
    columns,
    default_thresholds,
    modules_on_path_by_enrollment,
    now_params,
    thresholds_for,
    thresholds_of,
    with_rollup,
)
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.errors import Invalid, NotFound
from app.config import Settings
from app.content.loader import ContentLibrary
from app.programs.catalogue import PROGRAMS, program_title
from app.programs.models import ModuleProgress
from app.questionnaires.models import QuestionnaireResponse

GroupBy = Literal["program", "therapist"]


def clinic_offset_seconds(timezone: str | None, now: datetime) -> int:
    """The clinic's UTC offset now, so weekends follow its calendar (DST shifts by an hour)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    offset = now.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def primary_instrument(library: ContentLibrary, program: str) -> str | None:
    """The instrument a program tracks week by week (else its first one)."""
    spec = library.programs.get(program)
    if spec is None:
        return None
    codes = spec.instruments.weekly or spec.instruments.baseline_and_end
    return codes[0] if codes else None


def thresholds_read(t: Thresholds) -> ThresholdsRead:
    return ThresholdsRead(**t.__dict__)


# One enrollment ------------------------------------------------------------------------------


def _adherence_select() -> Any:
    """Everything one enrollment's adherence needs, in one statement: the enrollment, its
    rollup, the clinic's thresholds and time zone, the modules on the patient's path and
    the answered waits (``kind:start:end`` epoch triples, comma-joined), so the request
    sends this, the session lookup and the audit row and nothing else."""
    on_path = (
        select(func.count())
        .where(ModuleProgress.enrollment_id == Enrollment.id, ModuleProgress.hidden_at.is_(None))
        .correlate(Enrollment)
        .scalar_subquery()
    )
    waits = (
        select(
            func.aggregate_strings(
                SupportWait.kind
                + ":"
                + cast(epoch_seconds(SupportWait.started_at), String)
                + ":"
                + cast(epoch_seconds(SupportWait.ended_at), String),
                ",",
            )
        )
        .where(SupportWait.enrollment_id == Enrollment.id)
        .correlate(Enrollment)
        .scalar_subquery()
    )
    return (
        with_rollup(
            select(
                Enrollment,
                EnrollmentRollup,
                AdherenceThreshold,
                Clinic.timezone,
                on_path.label("modules_on_path"),
                waits.label("waits"),
            ).select_from(Enrollment)
        )
        .join(Clinic, Clinic.id == Enrollment.clinic_id)
        .where(Enrollment.id == bindparam("enrollment_id"))
    )


_ADHERENCE_SELECT = _adherence_select()


def _working_days(waits: str | None, *, offset: int) -> dict[str, list[float]]:
    """Working days of each answered wait, per kind, from the aggregated triples."""
    found: dict[str, list[float]] = defaultdict(list)
    for item in (waits or "").split(","):
        if not item:
            continue
        kind, started, ended = item.rsplit(":", 2)
        seconds = business_seconds(int(started), int(ended), offset_seconds=offset)
        found[kind].append(max(0, seconds) / DAY)
    return found


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


async def read_enrollment_adherence(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    enrollment_id: int,
    *,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> EnrollmentAdherenceRead:
    """The API's read: the access check rides on the one SELECT that loads everything, and
    a caller who may not see the enrollment gets 404, as if it did not exist."""
    row = (await db.execute(_ADHERENCE_SELECT, {"enrollment_id": enrollment_id})).one_or_none()
    if row is None or not can_access_enrollment(principal, row.Enrollment):
        raise NotFound("Enrollment not found.")
    return await _adherence_read(db, actor, row, settings=settings, library=library, now=now)


async def enrollment_adherence(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    *,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> EnrollmentAdherenceRead:
    """Status, rollup figures and support received for an enrollment the caller may see."""
    row = (await db.execute(_ADHERENCE_SELECT, {"enrollment_id": enrollment.id})).one()
    return await _adherence_read(db, actor, row, settings=settings, library=library, now=now)


async def _adherence_read(
    db: AsyncSession,
    actor: Actor,
    row: Any,
    *,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> EnrollmentAdherenceRead:
    """The read model from the loaded row (the read is audited). The status comes from
    :func:`status.classify`, the Python twin of the SQL the caseload uses."""
    enrollment: Enrollment = row.Enrollment
    rollup: EnrollmentRollup | None = row.EnrollmentRollup
    stored: AdherenceThreshold | None = row.AdherenceThreshold
    thresholds = default_thresholds(settings) if stored is None else thresholds_of(stored)
    classified = classify(
        enrollment=enrollment,
        rollup=rollup,
        thresholds=thresholds,
        modules_on_path=int(row.modules_on_path or 0),
        library=library,
        now=now,
    )
    waits = _working_days(row.waits, offset=clinic_offset_seconds(row.timezone, now))
    replies = sorted(waits["reply"])
    feedback = sorted(waits["feedback"])
    r = rollup or EnrollmentRollup(enrollment_id=enrollment.id)

    def n(value: int | None) -> int:
        return int(value or 0)

    # One Core INSERT: the same row as ``audit.record`` without an ORM flush, which was
    # a tenth of this request's CPU in the profile.
    await audit.record_many(
        db,
        actor,
        action="read",
        resource_type="adherence",
        targets=[(enrollment.id, enrollment.patient_id)],
        clinic_id=enrollment.clinic_id,
        at=now,
    )
    status = classified.status.value
    return EnrollmentAdherenceRead(
        enrollment_id=enrollment.id,
        program=enrollment.program,
        enrollment_status=enrollment.status,
        status=status,
        status_label=STATUS_LABELS[status],
        thresholds=thresholds_read(thresholds),
        started_at=enrollment.activated_at,
        days_since_activity=(
            max(0, classified.idle_seconds // DAY) if enrollment.activated_at else None
        ),
        modules_completed=min(n(r.modules_completed), classified.modules_total),
        modules_total=classified.modules_total,
        exercises_submitted=n(r.exercises_submitted),
        questionnaires_completed=n(r.questionnaires_completed),
        logins=n(r.login_count),
        first_activity_at=r.first_activity_at,
        last_activity_at=r.last_activity_at,
        last_login_at=r.last_login_at,
        last_module_completed_at=r.last_module_completed_at,
        last_questionnaire_at=r.last_questionnaire_at,
        messages_from_patient=n(r.messages_from_patient),
        messages_to_patient=n(r.messages_to_patient),
        last_patient_message_at=r.last_patient_message_at,
        last_therapist_message_at=r.last_therapist_message_at,
        reminders_sent=n(r.reminders_sent),
        reminders_opened=n(r.reminders_opened),
        alerts_raised=n(r.alerts_raised),
        support=SupportRead(
            replies=len(replies),
            median_reply_working_days=_round(metrics.median(replies)),
            feedback_given=len(feedback),
            median_feedback_working_days=_round(metrics.median(feedback)),
            awaiting_reply_since=r.awaiting_reply_since,
            awaiting_feedback_since=r.awaiting_feedback_since,
            gestures={name: n(getattr(r, f"gestures_{name}")) for name in GESTURES},
        ),
    )


# Caseload ------------------------------------------------------------------------------------


@dataclass
class CaseloadRow:
    enrollment_id: int
    patient_name: str
    program: str
    program_title: str
    enrollment_status: str
    status: str
    status_label: str
    modules_completed: int
    modules_total: int
    days_since_activity: int | None
    last_activity_at: datetime | None
    last_therapist_message_at: datetime | None
    awaiting_reply_since: datetime | None
    instrument: str | None
    scores: list[int] = field(default_factory=list)


@dataclass
class Caseload:
    rows: list[CaseloadRow]
    counts: dict[str, int]


async def caseload(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    *,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
    status: str | None = None,
    include_ended: bool = False,
) -> Caseload:
    """The caller's patients with status, progress, trend and last contact: three queries."""
    cols = cached_columns(settings, library)
    patient_user = aliased(User, name="patient_user")
    stmt = with_rollup(
        select(
            Enrollment.id,
            Enrollment.program,
            Enrollment.status.label("enrollment_status"),
            Enrollment.activated_at,
            Enrollment.patient_id,
            patient_user.full_name,
            cols.status.label("status"),
            cols.modules_total.label("modules_total"),
            cols.modules_completed.label("modules_completed"),
            cols.idle_seconds.label("idle_seconds"),
            EnrollmentRollup.last_activity_at,
            EnrollmentRollup.last_therapist_message_at,
            EnrollmentRollup.awaiting_reply_since,
        ).select_from(Enrollment)
    )
    stmt = stmt.join(Patient, Patient.id == Enrollment.patient_id).join(
        patient_user, patient_user.id == Patient.user_id
    )
    stmt = scope_enrollments(stmt, principal, Enrollment)
    if not include_ended:
        stmt = stmt.where(Enrollment.status.in_(("invited", "active", "paused")))
    rows = (await db.execute(stmt.order_by(Enrollment.id), now_params(now))).all()
    order = {s.value: i for i, s in enumerate(STATUS_ORDER)}
    counts = dict.fromkeys((s.value for s in STATUS_ORDER), 0)
    result: list[CaseloadRow] = []
    for row in rows:
        counts[row.status] += 1
        if status and row.status != status:
            continue
        result.append(
            CaseloadRow(
                enrollment_id=row.id,
                patient_name=row.full_name,
                program=row.program,
                program_title=program_title(row.program),
                enrollment_status=row.enrollment_status,
                status=row.status,
                status_label=STATUS_LABELS[row.status],
                modules_completed=min(int(row.modules_completed), int(row.modules_total)),
                modules_total=int(row.modules_total),
                days_since_activity=max(0, int(row.idle_seconds) // DAY)
                if row.activated_at
                else None,
                last_activity_at=row.last_activity_at,
                last_therapist_message_at=row.last_therapist_message_at,
                awaiting_reply_since=row.awaiting_reply_since,
                instrument=primary_instrument(library, row.program),
            )
        )
    result.sort(key=lambda r: (order[r.status], -(r.days_since_activity or 0), r.patient_name))
    ids = [r.enrollment_id for r in result]
    if ids:
        scores = await db.execute(
            select(
                QuestionnaireResponse.enrollment_id,
                QuestionnaireResponse.instrument,
                QuestionnaireResponse.total,
            )
            .where(QuestionnaireResponse.enrollment_id.in_(ids))
            .order_by(
                QuestionnaireResponse.enrollment_id,
                QuestionnaireResponse.completed_at,
                QuestionnaireResponse.id,
            )
        )
        by_id = {r.enrollment_id: r for r in result}
        for enrollment_id, instrument, total in scores:
            target = by_id[enrollment_id]
            if instrument == target.instrument:
                target.scores.append(int(total))
    # The list shows patients' names: one audit row per patient shown, one statement.
    patient_of = {row.id: row.patient_id for row in rows}
    await audit.record_many(
        db,
        actor,
        action="list",
        resource_type="caseload",
        targets=[(r.enrollment_id, patient_of[r.enrollment_id]) for r in result],
        at=now,
    )
    return Caseload(rows=result, counts=counts)


# Timeline ------------------------------------------------------------------------------------

TIMELINE_PAGE = 100


async def timeline_events(
    db: AsyncSession, enrollment_id: int, *, before: int | None = None, limit: int = TIMELINE_PAGE
) -> tuple[list[AdherenceEvent], int | None]:
    """A page of one enrollment's events, newest first, by keyset on (at, id) through the
    ``(enrollment_id, at)`` index; returns the cursor for the next page."""
    stmt = select(AdherenceEvent).where(AdherenceEvent.enrollment_id == enrollment_id)
    if before is not None:
        anchor = await db.get(AdherenceEvent, before)
        if anchor is None or anchor.enrollment_id != enrollment_id:
            raise Invalid("That page of the timeline does not exist.", field="before")
        stmt = stmt.where(
            or_(
                AdherenceEvent.at < anchor.at,
                and_(AdherenceEvent.at == anchor.at, AdherenceEvent.id < anchor.id),
            )
        )
    rows = list(
        await db.scalars(
            stmt.order_by(AdherenceEvent.at.desc(), AdherenceEvent.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


# The clinic report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFilters:
    program: str | None = None
    therapist_id: int | None = None
    enrolled_from: date | None = None
    enrolled_to: date | None = None
    group_by: GroupBy = "program"


async def check_filters(db: AsyncSession, clinic_id: int, filters: ReportFilters) -> None:
    """Unknown program or therapist, or a reversed period: 422 naming the field."""
    if filters.program is not None and filters.program not in PROGRAMS:
        raise Invalid(
            f"Unknown program; choose one of: {', '.join(PROGRAMS)}.",
            field="program",
            code="unknown_program",
        )
    if filters.therapist_id is not None:
        found = await db.scalar(
            select(User.id).where(
                User.id == filters.therapist_id,
                User.clinic_id == clinic_id,
                User.role == Role.THERAPIST,
            )
        )
        if found is None:
            raise Invalid(
                "Choose a therapist of this clinic.", field="therapist_id", code="unknown_therapist"
            )
    if (
        filters.enrolled_from is not None
        and filters.enrolled_to is not None
        and filters.enrolled_from > filters.enrolled_to
    ):
        raise Invalid(
            "The start of the period is after its end.",
            field="enrolled_from",
            code="reversed_period",
        )


def apply_filters(stmt: Any, clinic_id: int, filters: ReportFilters) -> Any:
    """Clinic scope plus the report filters, on any select that joins Enrollment."""
    stmt = stmt.where(Enrollment.clinic_id == clinic_id)
    if filters.program:
        stmt = stmt.where(Enrollment.program == filters.program)
    if filters.therapist_id:
        stmt = stmt.where(Enrollment.therapist_id == filters.therapist_id)
    if filters.enrolled_from:
        start = datetime.combine(filters.enrolled_from, time(0), tzinfo=UTC)
        stmt = stmt.where(Enrollment.created_at >= start)
    if filters.enrolled_to:
        end = datetime.combine(filters.enrolled_to + timedelta(days=1), time(0), tzinfo=UTC)
        stmt = stmt.where(Enrollment.created_at < end)
    return stmt


def _group_column(group_by: GroupBy) -> Any:
    return Enrollment.program if group_by == "program" else Enrollment.therapist_id


@dataclass
class _Acc:
    """Per-group figures gathered from the grouped queries."""

    enrollments: int = 0
    not_started: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_LABELS, 0))
    completed_hist: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    survival: dict[tuple[bool, int], int] = field(default_factory=lambda: defaultdict(int))
    dropout_weeks: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    modules_max: int = 0
    dropout_share_sum: float = 0.0
    patient_weeks: float = 0.0
    from_patients: int = 0
    from_therapists: int = 0
    gestures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GESTURES, 0))
    waits: dict[str, tuple[int, float | None, int]] = field(default_factory=dict)
    outcomes: list[OutcomeRead] = field(default_factory=list)


async def clinic_report(
    db: AsyncSession,
    actor: Actor,
    *,
    clinic_id: int,
    filters: ReportFilters,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> AdherenceReport:
    """Report per program or therapist, plus the whole filtered cohort; audited once."""
    await check_filters(db, clinic_id, filters)
    on_path = modules_on_path_by_enrollment(clinic_id)
    cols = columns(settings, library, now, on_path=on_path.c.n)
    g = _group_column(filters.group_by).label("g")
    started = Enrollment.activated_at.is_not(None)
    base: Any = apply_filters(
        with_rollup(
            select(
                g,
                Enrollment.id.label("enrollment_id"),
                Enrollment.program.label("program"),
                started.label("started"),
                cols.status.label("status"),
                cols.modules_total.label("modules_total"),
                cols.modules_completed.label("modules_completed"),
                cols.dropped.label("dropped"),
                ((cols.last_epoch - cols.start_epoch) // WEEK).label("dropout_week"),
                ((cols.observed_until_epoch - cols.start_epoch) // WEEK).label("observed_week"),
                (cols.observed_until_epoch - cols.start_epoch).label("observed_seconds"),
                func.coalesce(EnrollmentRollup.messages_from_patient, 0).label("from_patient"),
                func.coalesce(EnrollmentRollup.messages_to_patient, 0).label("to_patient"),
                *[
                    func.coalesce(getattr(EnrollmentRollup, f"gestures_{name}"), 0).label(name)
                    for name in GESTURES
                ],
            ).select_from(Enrollment)
        ).outerjoin(on_path, on_path.c.enrollment_id == Enrollment.id),
        clinic_id,
        filters,
    )
    # OFFSET 0 keeps PostgreSQL from inlining the subquery, so each row's status is
    # computed once rather than at every reference below.
    base = base.offset(0).subquery("base")
    b = base.c
    acc: dict[Any, _Acc] = defaultdict(_Acc)

    # 1. One pass over the cohort, grouped finely enough that every count, curve and sum
    #    below can be added up from it: (group, started, status, modules done, dropped,
    #    week of dropout or of last observation). A few hundred rows, whatever the size.
    done = case((b.modules_completed > b.modules_total, b.modules_total), else_=b.modules_completed)
    week = case((b.dropped, b.dropout_week), else_=b.observed_week)
    fine = [b.g, b.started, b.status, done, b.dropped, week]
    sums = [
        func.count(),
        func.max(b.modules_total),
        func.sum(
            case(
                (b.dropped, cast(done, Float) / func.nullif(b.modules_total, 0)),
                else_=literal(0.0, Float()),
            )
        ),
        func.sum(case((b.observed_seconds > 0, b.observed_seconds), else_=0)),
        func.sum(b.from_patient),
        func.sum(b.to_patient),
        *[func.sum(b[name]) for name in GESTURES],
    ]
    for row in await db.execute(select(*fine, *sums).group_by(*fine)):
        key, is_started, status, completed, dropped, wk, n, modules_max, share_sum = row[:9]
        seconds, from_p, to_p, *gestures = row[9:]
        a = acc[key]
        a.enrollments += n
        if not is_started:
            a.not_started += n
            continue
        a.statuses[status] += n
        a.completed_hist[int(completed)] += n
        a.survival[(bool(dropped), max(0, int(wk)))] += n
        if dropped:
            a.dropout_weeks[max(0, int(wk))] += n
        a.modules_max = max(a.modules_max, int(modules_max or 0))
        a.dropout_share_sum += float(share_sum or 0)
        a.patient_weeks += float(seconds or 0) / WEEK
        a.from_patients += int(from_p or 0)
        a.from_therapists += int(to_p or 0)
        for name, value in zip(GESTURES, gestures, strict=True):
            a.gestures[name] += int(value or 0)

    # 4. Reply and feedback waits: medians in working days, per group and overall.
    clinic = await db.get(Clinic, clinic_id)
    offset = clinic_offset_seconds(clinic.timezone if clinic else None, now)
    promise = settings.response_promise_working_days * DAY
    total_waits = await _wait_medians(db, clinic_id, filters, offset=offset, promise=promise)
    for (key, kind), figures in total_waits.items():
        if key is not _TOTAL:
            acc[key].waits[kind] = figures

    # 5. Outcomes: baseline to latest on each program's main instrument.
    outcome_rows = await _outcomes(db, clinic_id, filters, library)
    for key, outcome in outcome_rows:
        if key is not _TOTAL:
            acc[key].outcomes.append(outcome)

    names = await _therapist_names(db, clinic_id) if filters.group_by == "therapist" else {}
    groups = [
        _group_report(
            str(key),
            program_title(key) if filters.group_by == "program" else names.get(key, f"#{key}"),
            a,
            settings,
        )
        for key, a in sorted(acc.items(), key=lambda kv: str(kv[0]))
    ]
    cohort_acc = _merge(list(acc.values()))
    cohort_acc.waits = {kind: f for (key, kind), f in total_waits.items() if key is _TOTAL}
    cohort_acc.outcomes = [o for key, o in outcome_rows if key is _TOTAL]
    cohort = _group_report("all", "All selected enrollments", cohort_acc, settings)
    thresholds = await thresholds_for(db, clinic_id, settings)
    await audit.record(
        db,
        actor,
        action="read",
        resource_type="adherence_report",
        resource_id=clinic_id,
        clinic_id=clinic_id,
        at=now,
    )
    return AdherenceReport(
        generated_at=now,
        filters=ReportFiltersRead(**filters.__dict__),
        thresholds=thresholds_read(thresholds),
        promise_working_days=settings.response_promise_working_days,
        minutes_per_message=settings.adherence_minutes_per_message,
        cohort=cohort,
        groups=groups,
    )


class _TotalKey:
    def __repr__(self) -> str:
        return "TOTAL"


_TOTAL: Any = _TotalKey()


async def _wait_medians(
    db: AsyncSession, clinic_id: int, filters: ReportFilters, *, offset: int, promise: int
) -> dict[tuple[Any, str], tuple[int, float | None, int]]:
    """(count, median working days, answered within the promise) per (group, kind).

    Medians by window functions (both databases): rank each group's waits, then average
    the one or two middle ranks. One statement and one scan of the waits for the groups
    and the total: both rankings are taken in the same pass (a CTE), then grouped twice.
    """
    g = _group_column(filters.group_by).label("g")
    seconds = working_seconds(
        epoch_seconds(SupportWait.started_at),
        epoch_seconds(SupportWait.ended_at),
        offset_seconds=offset,
    )
    waits = apply_filters(
        select(g, SupportWait.kind.label("kind"), seconds.label("s")).join(
            Enrollment, Enrollment.id == SupportWait.enrollment_id
        ),
        clinic_id,
        filters,
    ).subquery("waits")
    w = waits.c
    per_group = [w.g, w.kind]
    overall = [w.kind]
    ranked = select(
        w.g,
        w.kind,
        w.s,
        func.row_number().over(partition_by=per_group, order_by=w.s).label("rn"),
        func.count().over(partition_by=per_group).label("n"),
        func.row_number().over(partition_by=overall, order_by=w.s).label("rn_all"),
        func.count().over(partition_by=overall).label("n_all"),
    ).cte("ranked")
    r = ranked.c

    def figures(rn: Any, n: Any) -> list[Any]:
        middle = or_(rn == (n + 1) // 2, rn == (n + 2) // 2)
        return [
            func.max(n),
            func.avg(case((middle, cast(r.s, Float)))),
            func.sum(case((r.s <= promise, 1), else_=0)),
        ]

    groups = select(literal_column("0").label("total"), r.g, r.kind, *figures(r.rn, r.n)).group_by(
        r.g, r.kind
    )
    everyone = select(
        literal_column("1"), cast(null(), g.type), r.kind, *figures(r.rn_all, r.n_all)
    ).group_by(r.kind)
    result: dict[tuple[Any, str], tuple[int, float | None, int]] = {}
    for total, group, kind, n, mid, within in await db.execute(groups.union_all(everyone)):
        key: Any = _TOTAL if int(total) else group
        median_days = None if mid is None else round(max(0.0, float(mid)) / DAY, 2)
        result[(key, kind)] = (int(n), median_days, int(within or 0))
    return result


async def _outcomes(
    db: AsyncSession, clinic_id: int, filters: ReportFilters, library: ContentLibrary
) -> list[tuple[Any, OutcomeRead]]:
    """Per group and overall: patients with a baseline and a later answer on the program's
    main instrument, mean totals and how many changed reliably (the instrument's threshold)."""
    instrument_of = {
        slug: code for slug in library.programs if (code := primary_instrument(library, slug))
    }
    if not instrument_of:
        return []
    q = QuestionnaireResponse
    instrument = case(instrument_of, value=Enrollment.program, else_=None)
    g = _group_column(filters.group_by).label("g")
    # Rank each enrollment's answers on its main instrument both ways, in one window pass:
    # the baseline answer (else the first) and the latest, as the therapist's view does.
    ranked = apply_filters(
        select(
            g,
            Enrollment.id.label("eid"),
            q.instrument.label("instrument"),
            q.id.label("qid"),
            q.total.label("total"),
            func.row_number()
            .over(
                partition_by=Enrollment.id,
                order_by=(case((q.occasion == "baseline", 0), else_=1), q.completed_at, q.id),
            )
            .label("first_rank"),
            func.row_number()
            .over(partition_by=Enrollment.id, order_by=(q.completed_at.desc(), q.id.desc()))
            .label("last_rank"),
        )
        .select_from(Enrollment)
        .join(q, and_(q.enrollment_id == Enrollment.id, q.instrument == instrument))
        .where(Enrollment.activated_at.is_not(None)),
        clinic_id,
        filters,
    ).subquery("ranked")
    r = ranked.c
    first, last = r.first_rank == 1, r.last_rank == 1
    per = (
        select(
            r.g,
            r.instrument,
            func.max(case((first, r.qid))).label("b_id"),
            func.max(case((first, r.total))).label("b"),
            func.max(case((last, r.qid))).label("l_id"),
            func.max(case((last, r.total))).label("l"),
        )
        .where(or_(first, last))
        .group_by(r.g, r.instrument, r.eid)
        .subquery("per")
    )
    codes = {code for code in instrument_of.values() if code in library.instruments}
    sign = case(
        {c: (-1 if library.instruments[c].direction == "lower_is_better" else 1) for c in codes},
        value=per.c.instrument,
        else_=0,
    )
    threshold = case(
        {c: library.instruments[c].reliable_change for c in codes},
        value=per.c.instrument,
        else_=None,
    )
    gain = sign * (per.c.l - per.c.b)
    stmt = (
        select(
            per.c.g,
            per.c.instrument,
            func.count(),
            func.sum(per.c.b),
            func.sum(per.c.l),
            func.sum(case((gain >= threshold, 1), else_=0)),
            func.sum(case((-gain >= threshold, 1), else_=0)),
        )
        .where(per.c.b_id != per.c.l_id)
        .group_by(per.c.g, per.c.instrument)
        .order_by(per.c.g, per.c.instrument)
    )
    # Sums per group, so the cohort's figures are added up here instead of a second query.
    sums: dict[tuple[Any, str], list[int]] = {}
    for key, code, *figures in await db.execute(stmt):
        sums[(key, code)] = [int(v or 0) for v in figures]
        total = sums.setdefault((_TOTAL, code), [0] * len(figures))
        for i, value in enumerate(figures):
            total[i] += int(value or 0)
    out: list[tuple[Any, OutcomeRead]] = []
    for (key, code), (n, sum_b, sum_l, improved, worse) in sums.items():
        spec = library.instruments.get(code)
        mean_b, mean_l = sum_b / n, sum_l / n
        out.append(
            (
                key,
                OutcomeRead(
                    instrument=code,
                    title=spec.title if spec else code,
                    patients=n,
                    mean_baseline=round(mean_b, 2),
                    mean_latest=round(mean_l, 2),
                    mean_change=round(mean_l - mean_b, 2),
                    reliably_improved=improved,
                    reliably_improved_share=metrics.share(improved, n),
                    reliably_deteriorated=worse,
                ),
            )
        )
    return out


async def _therapist_names(db: AsyncSession, clinic_id: int) -> dict[int, str]:
    rows = await db.execute(
        select(User.id, User.full_name).where(
            User.clinic_id == clinic_id, User.role == Role.THERAPIST
        )
    )
    return {int(i): name for i, name in rows}


def _merge(parts: list[_Acc]) -> _Acc:
    total = _Acc()
    for a in parts:
        total.enrollments += a.enrollments
        total.not_started += a.not_started
        for status, n in a.statuses.items():
            total.statuses[status] += n
        for done, n in a.completed_hist.items():
            total.completed_hist[done] += n
        for point, n in a.survival.items():
            total.survival[point] += n
        for week, n in a.dropout_weeks.items():
            total.dropout_weeks[week] += n
        total.modules_max = max(total.modules_max, a.modules_max)
        total.dropout_share_sum += a.dropout_share_sum
        total.patient_weeks += a.patient_weeks
        total.from_patients += a.from_patients
        total.from_therapists += a.from_therapists
        for name, n in a.gestures.items():
            total.gestures[name] += n
    return total


def _group_report(key: str, label: str, a: _Acc, settings: Settings) -> GroupReport:
    started = a.enrollments - a.not_started
    dropped = a.statuses[AdherenceStatus.DROPPED_OUT]
    completed = a.statuses[AdherenceStatus.COMPLETED]
    replies = a.waits.get("reply", (0, None, 0))
    feedback = a.waits.get("feedback", (0, None, 0))
    minutes = a.from_therapists * settings.adherence_minutes_per_message
    minutes_per_week = metrics.per_week(minutes, a.patient_weeks)
    return GroupReport(
        key=key,
        label=label,
        enrollments=a.enrollments,
        not_started=a.not_started,
        started=started,
        status_counts={k: int(v) for k, v in a.statuses.items()},
        completion_rate=metrics.share(completed, started),
        dropout_rate=metrics.share(dropped, started),
        dropout_median_week=metrics.median_week(a.dropout_weeks),
        dropout_mean_share_of_modules_done=(
            round(a.dropout_share_sum / dropped, 4) if dropped else None
        ),
        retention=[
            RetentionRead(**p.__dict__)
            for p in metrics.retention_curve(a.completed_hist, modules=a.modules_max)
        ],
        survival=[SurvivalRead(**p.__dict__) for p in metrics.kaplan_meier(a.survival)],
        replies=replies[0],
        median_reply_working_days=replies[1],
        replies_within_promise_share=metrics.share(replies[2], replies[0]),
        feedback_given=feedback[0],
        median_feedback_working_days=feedback[1],
        patient_weeks=round(a.patient_weeks, 2),
        messages_from_patients=a.from_patients,
        messages_from_therapists=a.from_therapists,
        messages_per_patient_week=metrics.per_week(
            a.from_patients + a.from_therapists, a.patient_weeks
        ),
        therapist_minutes_per_patient_week=minutes_per_week,
        minutes_norm=metrics.norm_verdict(minutes_per_week),
        support_mix=dict(a.gestures),
        outcomes=a.outcomes,
    )


__all__ = [
    "Caseload",
    "CaseloadRow",
    "GroupBy",
    "ReportFilters",
    "caseload",
    "check_filters",
    "clinic_offset_seconds",
    "clinic_report",
    "enrollment_adherence",
    "primary_instrument",
    "read_enrollment_adherence",
    "timeline_events",
]
