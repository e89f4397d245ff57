"""Arranging questionnaire data for tests: alerts and answer sets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.clinics.models import Enrollment
from app.questionnaires.models import RiskAlert


async def create_alert(
    db: AsyncSession,
    enrollment: Enrollment,
    *,
    level: str = "urgent",
    at: datetime | None = None,
    reason: str = "Mood questionnaire (PHQ-9), question q9 = 1: Thoughts of death or of self-harm",
) -> int:
    """An open risk alert on ``enrollment``, committed so the app sees it."""
    alert = RiskAlert(
        enrollment_id=enrollment.id,
        level=level,
        source="questionnaire",
        source_id=None,
        reason=reason,
        created_at=at or enrollment.created_at,
    )
    db.add(alert)
    await db.commit()
    return alert.id


def phq9(q9: int = 0, rest: int = 1) -> dict[str, int]:
    """PHQ-9 answers: every item ``rest`` except the self-harm item."""
    answers = {f"q{i}": rest for i in range(1, 9)}
    answers["q9"] = q9
    return answers


def gad7(value: int = 1) -> dict[str, int]:
    return {f"q{i}": value for i in range(1, 8)}
