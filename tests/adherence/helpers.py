"""Arranging adherence data for tests: events at chosen times, scores, clinic time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.adherence import service as adherence
from app.adherence.service import EventKind
from app.clinics.models import Enrollment
from app.questionnaires.models import QuestionnaireResponse


async def log(
    db: AsyncSession,
    enrollment: Enrollment,
    kind: EventKind,
    at: datetime,
    *,
    role: str = "patient",
    **detail: Any,
) -> None:
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=kind,
        at=at,
        actor_role=role,
        detail=detail or None,
    )


async def message(
    db: AsyncSession,
    enrollment: Enrollment,
    at: datetime,
    *,
    role: str,
    functions: tuple[str, ...] = (),
    anchored: bool = False,
) -> None:
    await log(
        db,
        enrollment,
        EventKind.MESSAGE_SENT,
        at,
        role=role,
        message_id=0,
        functions=list(functions),
        anchored=anchored,
    )


async def score(
    db: AsyncSession,
    enrollment: Enrollment,
    at: datetime,
    total: int,
    *,
    instrument: str = "phq9",
    occasion: str = "weekly",
    week: int = 1,
    band: str = "moderate",
) -> QuestionnaireResponse:
    response = QuestionnaireResponse(
        enrollment_id=enrollment.id,
        instrument=instrument,
        occasion=occasion,
        week=week,
        answers={"q1": 1},
        total=total,
        band=band,
        completed_at=at,
    )
    db.add(response)
    await db.flush()
    return response
