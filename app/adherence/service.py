"""The one way to add to the adherence log; keeps the per-enrollment rollup in step."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.adherence.models import AdherenceEvent, EnrollmentRollup


class EventKind(enum.StrEnum):
    LOGIN = "login"
    INVITATION_ACCEPTED = "invitation_accepted"
    MODULE_OPENED = "module_opened"
    PAGE_VIEWED = "page_viewed"
    EXERCISE_SAVED = "exercise_saved"
    EXERCISE_SUBMITTED = "exercise_submitted"
    MODULE_COMPLETED = "module_completed"
    QUESTIONNAIRE_COMPLETED = "questionnaire_completed"
    MESSAGE_SENT = "message_sent"
    MESSAGE_READ = "message_read"
    FEEDBACK_READ = "feedback_read"
    REMINDER_SENT = "reminder_sent"
    REMINDER_OPENED = "reminder_opened"
    ALERT_RAISED = "alert_raised"
    STATUS_CHANGED = "status_changed"


# Staff actions are logged but do not count as the patient being active.
PATIENT_ACTIVITY = frozenset(
    {
        EventKind.LOGIN,
        EventKind.INVITATION_ACCEPTED,
        EventKind.MODULE_OPENED,
        EventKind.PAGE_VIEWED,
        EventKind.EXERCISE_SAVED,
        EventKind.EXERCISE_SUBMITTED,
        EventKind.MODULE_COMPLETED,
        EventKind.QUESTIONNAIRE_COMPLETED,
        EventKind.MESSAGE_SENT,
        EventKind.MESSAGE_READ,
        EventKind.FEEDBACK_READ,
        EventKind.REMINDER_OPENED,
    }
)


async def record(
    db: AsyncSession,
    *,
    enrollment_id: int,
    kind: EventKind,
    at: datetime,
    actor_role: str | None = "patient",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an event and update the rollup in the same transaction."""
    db.add(
        AdherenceEvent(
            enrollment_id=enrollment_id,
            kind=kind.value,
            at=at,
            actor_role=actor_role,
            detail=detail,
        )
    )
    rollup = await db.get(EnrollmentRollup, enrollment_id)
    if rollup is None:
        rollup = EnrollmentRollup(enrollment_id=enrollment_id, event_count=0, login_count=0)
        db.add(rollup)
    rollup.event_count += 1
    if kind in PATIENT_ACTIVITY and actor_role == "patient":
        if rollup.first_activity_at is None or at < rollup.first_activity_at:
            rollup.first_activity_at = at
        if rollup.last_activity_at is None or at > rollup.last_activity_at:
            rollup.last_activity_at = at
    if kind is EventKind.LOGIN:
        rollup.login_count += 1
        if rollup.last_login_at is None or at > rollup.last_login_at:
            rollup.last_login_at = at
    await db.flush()


async def rollups_for(db: AsyncSession, enrollment_ids: list[int]) -> dict[int, EnrollmentRollup]:
    """Rollups for a page of enrollments in one query."""
    if not enrollment_ids:
        return {}
    rows = await db.scalars(
        select(EnrollmentRollup).where(EnrollmentRollup.enrollment_id.in_(enrollment_ids))
    )
    return {r.enrollment_id: r for r in rows}


async def recent_events(
    db: AsyncSession, enrollment_id: int, *, limit: int = 20
) -> list[AdherenceEvent]:
    rows = await db.scalars(
        select(AdherenceEvent)
        .where(AdherenceEvent.enrollment_id == enrollment_id)
        .order_by(AdherenceEvent.at.desc(), AdherenceEvent.id.desc())
        .limit(limit)
    )
    return list(rows)


async def event_count(db: AsyncSession, enrollment_id: int) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(AdherenceEvent)
            .where(AdherenceEvent.enrollment_id == enrollment_id)
        )
        or 0
    )


__all__ = ["EventKind", "event_count", "recent_events", "record", "rollups_for"]
