"""The append-only adherence log and the per-enrollment rollup that dashboards read instead."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base, BigIntId


class AdherenceEvent(Base):
    __tablename__ = "adherence_event"
    __table_args__ = (Index("ix_adherence_event_enrollment_at", "enrollment_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utc_now)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EnrollmentRollup(Base):
    __tablename__ = "enrollment_rollup"

    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE"), primary_key=True
    )
    event_count: Mapped[int] = mapped_column(default=0)
    first_activity_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    login_count: Mapped[int] = mapped_column(default=0)
