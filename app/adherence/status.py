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

Everything is one SQL expression so the caseload, the single-enrollment view and the clinic
report classify identically, and the report can count statuses without loading rows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, literal, or_, select
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


def columns(
    settings: Settings, library: ContentLibrary, now: datetime, *, on_path: Any = None
) -> Columns:
    """Expressions over Enrollment, EnrollmentRollup and AdherenceThreshold (outer-joined)."""
    t = AdherenceThreshold
    r = EnrollmentRollup
    e = Enrollment
    now_epoch = literal(int(now.timestamp()), Integer())
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
