"""Adherence status per enrollment, derived in SQL from the rollup, the clock and thresholds.

The rules, first match wins (documented in docs/adherence.md):

1. **completed**: the enrollment was marked completed, or every module on the patient's
   path is done;
2. **dropped out**: marked dropped, or no patient activity for ``dropout_days``;
3. **inactive**: no activity for ``inactive_days``;
4. **falling behind**: no activity for ``falling_behind_days``, or more than
   ``pace_slack_modules`` modules behind the program's even pace (``weeks`` for all modules);
5. **on track** otherwise.

"Now" is the clock for open treatments, the moment of pausing for paused ones and the end
date for closed ones, so a pause does not turn into a dropout. Inactivity counts from the
last patient activity, or from the start when there was none. Thresholds come from the
clinic's ``adherence_threshold`` row, else from settings.

Lists (the caseload, the clinic report, exports) classify in SQL with one expression, so the
report can count statuses without loading rows; :func:`classify` is its Python twin for a
single enrollment whose row is already loaded (a test checks that both always agree). The
expression is built once per thresholds and content library with "now" as the bound
parameter ``now_epoch`` (:func:`now_params`), so a request neither rebuilds it nor makes
SQLAlchemy walk it to find the compiled statement again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.adherence.models import AdherenceThreshold, EnrollmentRollup
from app.adherence.sql import DAY, WEEK, epoch_seconds
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import Enrollment
from app.config import Settings
from app.content.loader import ContentLibrary
from app.programs.models import ModuleProgress

DEFAULT_PROGRAM_WEEKS = 12


class AdherenceStatus(enum.StrEnum):
    ON_TRACK = "on_track"
    FALLING_BEHIND = "falling_behind"
    INACTIVE = "inactive"
    DROPPED_OUT = "dropped_out"
    COMPLETED = "completed"


STATUS_LABELS: dict[str, str] = {
    AdherenceStatus.ON_TRACK: "On track",
    AdherenceStatus.FALLING_BEHIND: "Falling behind",
    AdherenceStatus.INACTIVE: "Inactive",
    AdherenceStatus.DROPPED_OUT: "Dropped out",
    AdherenceStatus.COMPLETED: "Completed",
}
# Most urgent first, for sorting a caseload.
STATUS_ORDER = (
    AdherenceStatus.INACTIVE,
    AdherenceStatus.FALLING_BEHIND,
    AdherenceStatus.DROPPED_OUT,
    AdherenceStatus.ON_TRACK,
    AdherenceStatus.COMPLETED,
)


@dataclass(frozen=True)
class Thresholds:
    falling_behind_days: int
    inactive_days: int
    dropout_days: int
    pace_slack_modules: int
    source: str  # "clinic" or "settings"


def default_thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        falling_behind_days=settings.adherence_falling_behind_days,
        inactive_days=settings.adherence_inactive_days,
        dropout_days=settings.adherence_dropout_days,
        pace_slack_modules=settings.adherence_pace_slack_modules,
        source="settings",
    )


async def thresholds_for(db: AsyncSession, clinic_id: int, settings: Settings) -> Thresholds:
    row = await db.get(AdherenceThreshold, clinic_id)
    if row is None:
        return default_thresholds(settings)
    return thresholds_of(row)


def thresholds_of(row: AdherenceThreshold) -> Thresholds:
    """A clinic's own thresholds row, as the rules read it."""
    return Thresholds(
        falling_behind_days=row.falling_behind_days,
        inactive_days=row.inactive_days,
        dropout_days=row.dropout_days,
        pace_slack_modules=row.pace_slack_modules,
        source="clinic",
    )


async def save_thresholds(
    db: AsyncSession,
    actor: Actor,
    *,
    clinic_id: int,
    falling_behind_days: int,
    inactive_days: int,
    dropout_days: int,
    pace_slack_modules: int,
    now: datetime,
) -> Thresholds:
    """Store the clinic's own thresholds (already validated as increasing)."""
    row = await db.get(AdherenceThreshold, clinic_id)
    if row is None:
        row = AdherenceThreshold(clinic_id=clinic_id)
        db.add(row)
    row.falling_behind_days = falling_behind_days
    row.inactive_days = inactive_days
    row.dropout_days = dropout_days
    row.pace_slack_modules = pace_slack_modules
    row.updated_at = now
    row.updated_by_id = actor.user_id
    await db.flush()
    await audit.record(
        db,
        actor,
        action="update",
        resource_type="adherence_threshold",
        resource_id=clinic_id,
        clinic_id=clinic_id,
        at=now,
    )
    return Thresholds(
        falling_behind_days=falling_behind_days,
        inactive_days=inactive_days,
        dropout_days=dropout_days,
        pace_slack_modules=pace_slack_modules,
        source="clinic",
    )


@dataclass(frozen=True)
class Columns:
    """The SQL expressions that classify one enrollment (joined to its rollup)."""

    status: ColumnElement[str]
    modules_total: ColumnElement[int]
    modules_completed: ColumnElement[int]
    start_epoch: ColumnElement[int]
    ref_epoch: ColumnElement[int]
    last_epoch: ColumnElement[int]
    idle_seconds: ColumnElement[int]
    dropped: ColumnElement[bool]
    observed_until_epoch: ColumnElement[int]


def _threshold(column: Any, default: int) -> ColumnElement[int]:
    return func.coalesce(column, literal(default, Integer()))


def modules_on_path_by_enrollment(clinic_id: int) -> Any:
    """Visible modules per enrollment of one clinic, grouped once: for reports, where a
    correlated count per row would run many times over."""
    return (
        select(ModuleProgress.enrollment_id, func.count().label("n"))
        .join(Enrollment, Enrollment.id == ModuleProgress.enrollment_id)
        .where(Enrollment.clinic_id == clinic_id, ModuleProgress.hidden_at.is_(None))
        .group_by(ModuleProgress.enrollment_id)
        .subquery("on_path")
    )


def modules_total_expr(library: ContentLibrary, on_path: Any = None) -> ColumnElement[int]:
    """Modules on the patient's path (hidden ones left out); the program's own count when
    the path has not been laid out yet. By default a correlated count through the module
    index; ``on_path`` is a column from :func:`modules_on_path_by_enrollment` instead."""
    if on_path is None:
        on_path = (
            select(func.count())
            .where(
                ModuleProgress.enrollment_id == Enrollment.id, ModuleProgress.hidden_at.is_(None)
            )
            .correlate(Enrollment)
            .scalar_subquery()
        )
    on_path = func.coalesce(on_path, 0)
    program_count = case(
        {slug: len(p.modules) for slug, p in library.programs.items()},
        value=Enrollment.program,
        else_=0,
    )
    return case((on_path > 0, on_path), else_=program_count)


NOW_EPOCH = "now_epoch"
_CACHE_LIMIT = 8
_cached: dict[tuple[Any, ...], tuple[ContentLibrary, Columns]] = {}


def now_params(now: datetime) -> dict[str, int]:
    """The execution parameters of a statement built from :func:`cached_columns`."""
    return {NOW_EPOCH: int(now.timestamp())}


def cached_columns(settings: Settings, library: ContentLibrary) -> Columns:
    """:func:`columns` built once per (default thresholds, content library), with "now" left
    as the ``now_epoch`` parameter: building the expression (about sixty bound values) took
    3 to 4 ms per call on the development box, every request. Execute with
    :func:`now_params`."""
    key = (
        id(library),
        settings.adherence_falling_behind_days,
        settings.adherence_inactive_days,
        settings.adherence_dropout_days,
        settings.adherence_pace_slack_modules,
    )
    hit = _cached.get(key)
    if hit is not None and hit[0] is library:
        return hit[1]
    if len(_cached) >= _CACHE_LIMIT:
        _cached.clear()
    built = _build(settings, library, bindparam(NOW_EPOCH, type_=Integer()), None)
    _cached[key] = (library, built)
    return built


def columns(
    settings: Settings, library: ContentLibrary, now: datetime, *, on_path: Any = None
) -> Columns:
    """Expressions over Enrollment, EnrollmentRollup and AdherenceThreshold (outer-joined),
    with "now" bound in; for one-off statements such as the clinic report and exports."""
    return _build(settings, library, literal(int(now.timestamp()), Integer()), on_path)


def _build(
    settings: Settings, library: ContentLibrary, now_epoch: ColumnElement[int], on_path: Any
) -> Columns:
    t = AdherenceThreshold
    r = EnrollmentRollup
    e = Enrollment
    start = func.coalesce(epoch_seconds(e.activated_at), epoch_seconds(e.created_at))
    ref = case(
        (e.status == "paused", func.coalesce(epoch_seconds(e.status_changed_at), now_epoch)),
        (e.status == "closed", func.coalesce(epoch_seconds(e.ended_at), now_epoch)),
        else_=now_epoch,
    )
    last = func.coalesce(epoch_seconds(r.last_activity_at), start)
    idle = ref - last
    total = modules_total_expr(library, on_path)
    done = func.coalesce(r.modules_completed, 0)
    weeks = case(
        {slug: p.weeks for slug, p in library.programs.items()},
        value=e.program,
        else_=DEFAULT_PROGRAM_WEEKS,
    )
    # Modules the even pace expects by now, in integer SQL: elapsed * total / program length.
    expected = ((ref - start) * total) // (weeks * WEEK)
    falling = _threshold(t.falling_behind_days, settings.adherence_falling_behind_days) * DAY
    inactive = _threshold(t.inactive_days, settings.adherence_inactive_days) * DAY
    dropout = _threshold(t.dropout_days, settings.adherence_dropout_days) * DAY
    slack = _threshold(t.pace_slack_modules, settings.adherence_pace_slack_modules)
    finished = or_(e.status == "completed", and_(total > 0, done >= total))
    dropped = and_(~finished, or_(e.status == "dropped", idle >= dropout))
    status = case(
        (finished, literal(AdherenceStatus.COMPLETED.value)),
        (dropped, literal(AdherenceStatus.DROPPED_OUT.value)),
        (idle >= inactive, literal(AdherenceStatus.INACTIVE.value)),
        (
            or_(idle >= falling, done + slack < expected),
            literal(AdherenceStatus.FALLING_BEHIND.value),
        ),
        else_=literal(AdherenceStatus.ON_TRACK.value),
    )
    # Until when the enrollment was watched: the dropout moment (its last activity), the
    # end of a completed treatment, or now.
    observed = case(
        (dropped, last),
        (
            finished,
            func.coalesce(
                epoch_seconds(e.ended_at), epoch_seconds(r.last_module_completed_at), last
            ),
        ),
        else_=ref,
    )
    return Columns(
        status=status,
        modules_total=total,
        modules_completed=done,
        start_epoch=start,
        ref_epoch=ref,
        last_epoch=last,
        idle_seconds=idle,
        dropped=dropped,
        observed_until_epoch=observed,
    )


def with_rollup(stmt: Any) -> Any:
    """Outer-join the rollup and the clinic's thresholds onto a select from Enrollment."""
    return stmt.outerjoin(
        EnrollmentRollup, EnrollmentRollup.enrollment_id == Enrollment.id
    ).outerjoin(AdherenceThreshold, AdherenceThreshold.clinic_id == Enrollment.clinic_id)


def modules_total(library: ContentLibrary, program: str, on_path: int) -> int:
    """The Python twin of :func:`modules_total_expr`."""
    if on_path > 0:
        return on_path
    spec = library.programs.get(program)
    return len(spec.modules) if spec is not None else 0


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else math.floor(value.timestamp())


def _quotient(a: int, b: int) -> int:
    """Integer division truncating toward zero, as both databases divide integers."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass(frozen=True)
class Classified:
    status: AdherenceStatus
    modules_total: int
    idle_seconds: int


def classify(
    *,
    enrollment: Enrollment,
    rollup: EnrollmentRollup | None,
    thresholds: Thresholds,
    modules_on_path: int,
    library: ContentLibrary,
    now: datetime,
) -> Classified:
    """The rules of :func:`columns` for one loaded enrollment, in the same integer seconds."""
    now_epoch = int(now.timestamp())
    start = _epoch(enrollment.activated_at)
    if start is None:
        start = math.floor(enrollment.created_at.timestamp())
    if enrollment.status == "paused":
        ref = _epoch(enrollment.status_changed_at)
    elif enrollment.status == "closed":
        ref = _epoch(enrollment.ended_at)
    else:
        ref = now_epoch
    if ref is None:
        ref = now_epoch
    last = _epoch(rollup.last_activity_at if rollup is not None else None)
    if last is None:
        last = start
    idle = ref - last
    total = modules_total(library, enrollment.program, modules_on_path)
    done = (rollup.modules_completed if rollup is not None else None) or 0
    spec = library.programs.get(enrollment.program)
    weeks = spec.weeks if spec is not None else DEFAULT_PROGRAM_WEEKS
    expected = _quotient((ref - start) * total, weeks * WEEK)
    finished = enrollment.status == "completed" or (total > 0 and done >= total)
    dropped = not finished and (
        enrollment.status == "dropped" or idle >= thresholds.dropout_days * DAY
    )
    if finished:
        status = AdherenceStatus.COMPLETED
    elif dropped:
        status = AdherenceStatus.DROPPED_OUT
    elif idle >= thresholds.inactive_days * DAY:
        status = AdherenceStatus.INACTIVE
    elif (
        idle >= thresholds.falling_behind_days * DAY
        or done + thresholds.pace_slack_modules < expected
    ):
        status = AdherenceStatus.FALLING_BEHIND
    else:
        status = AdherenceStatus.ON_TRACK
    return Classified(status=status, modules_total=total, idle_seconds=idle)
