"""Questionnaire answers with their scores, and risk alerts raised from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base


class QuestionnaireResponse(Base):
    __tablename__ = "questionnaire_response"
    __table_args__ = (
        CheckConstraint("occasion IN ('baseline', 'weekly', 'end', 'extra')", name="occasion"),
        Index(
            "ix_questionnaire_response_enrollment_code_at",
            "enrollment_id",
            "instrument",
            "completed_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(32))
    occasion: Mapped[str] = mapped_column(String(16))
    week: Mapped[int]  # treatment week the answer belongs to (0 = baseline)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    total: Mapped[int]
    band: Mapped[str] = mapped_column(String(64))
    subscales: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[datetime] = mapped_column(default=utc_now)


class RiskAlert(Base):
    """Raised when a rule fires (e.g. any self-harm answer); the top of the therapist's work."""

    __tablename__ = "risk_alert"
    __table_args__ = (
        CheckConstraint("level IN ('urgent', 'warning', 'info')", name="level"),
        Index("ix_risk_alert_enrollment_ack", "enrollment_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(
        String(32)
    )  # questionnaire | exercise | message | inactivity
    source_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL")
    )
    action_note_encrypted: Mapped[str | None] = mapped_column(Text)
