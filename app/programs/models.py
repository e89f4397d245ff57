"""Per-enrollment module progress, tailoring and exercise responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base


class ModuleProgress(Base):
    """One row per module on a patient's path: the program's own, or one a therapist added.

    Status is derived: completed_at -> completed; started_at -> in progress;
    unlocked_at -> available; otherwise locked. Hidden modules are skipped by pacing.
    """

    __tablename__ = "module_progress"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "program", "module_key"),
        Index("ix_module_progress_enrollment_position", "enrollment_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    program: Mapped[str] = mapped_column(String(32))  # where the module's content lives
    module_key: Mapped[str] = mapped_column(String(120))  # file stem, e.g. "03-values-and-planning"
    position: Mapped[int]
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    hidden_at: Mapped[datetime | None]
    unlocked_at: Mapped[datetime | None]
    unlocked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    last_page: Mapped[int] = mapped_column(default=0)


class PacingOverride(Base):
    """A therapist's change to the program's pacing for one patient; null fields keep the default."""

    __tablename__ = "pacing_override"

    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE"), primary_key=True
    )
    therapist_gate: Mapped[bool | None]
    min_days_between_modules: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class TailoringChange(Base):
    """The record of every tailoring step, so each can be seen and reverted."""

    __tablename__ = "tailoring_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(
        String(32)
    )  # open_early | hide | unhide | add_module | remove_module | pacing
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    reverted_at: Mapped[datetime | None]


class ExerciseResponse(Base):
    """A patient's answer to one exercise: a draft until submitted. Answers are encrypted at rest."""

    __tablename__ = "exercise_response"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "program", "module_key", "exercise_id"),
        CheckConstraint("status IN ('draft', 'submitted')", name="status"),
        Index("ix_exercise_response_enrollment_status", "enrollment_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    program: Mapped[str] = mapped_column(String(32))
    module_key: Mapped[str] = mapped_column(String(120))
    exercise_id: Mapped[str] = mapped_column(String(80))
    exercise_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    data_encrypted: Mapped[str] = mapped_column(Text)
    derived: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    submitted_at: Mapped[datetime | None]
