"""The append-only adherence log and the per-enrollment rollup that dashboards read instead."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base, BigIntId, append_only


def _counter() -> Any:
    """A NOT NULL count that starts at zero, also for rows inserted by plain SQL."""
    return mapped_column(default=0, server_default="0")


class AdherenceEvent(Base):
    __tablename__ = "adherence_event"
    __table_args__ = (Index("ix_adherence_event_enrollment_at", "enrollment_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utc_now)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


append_only(AdherenceEvent)


class EnrollmentRollup(Base):
    """Everything a dashboard needs about one enrollment, kept current by ``record()``.

    Counters and latest/earliest timestamps only: the adherence *status* depends on the
    clock and the clinic's thresholds, so it is derived from these columns when read
    (``app.adherence.status``) and can never go stale. ``awaiting_*_since`` hold the
    oldest patient message (or submitted exercise) the therapist has not answered yet;
    when a therapist answers, the wait is written to ``support_wait``.
    """

    __tablename__ = "enrollment_rollup"

    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE"), primary_key=True
    )
    event_count: Mapped[int] = _counter()
    first_activity_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    login_count: Mapped[int] = _counter()
    modules_completed: Mapped[int] = _counter()
    last_module_completed_at: Mapped[datetime | None]
    exercises_submitted: Mapped[int] = _counter()
    questionnaires_completed: Mapped[int] = _counter()
    last_questionnaire_at: Mapped[datetime | None]
    messages_from_patient: Mapped[int] = _counter()
    messages_to_patient: Mapped[int] = _counter()
    last_patient_message_at: Mapped[datetime | None]
    last_therapist_message_at: Mapped[datetime | None]
    gestures_autonomy: Mapped[int] = _counter()
    gestures_alliance: Mapped[int] = _counter()
    gestures_emotion_regulation: Mapped[int] = _counter()
    reminders_sent: Mapped[int] = _counter()
    reminders_opened: Mapped[int] = _counter()
    alerts_raised: Mapped[int] = _counter()
    awaiting_reply_since: Mapped[datetime | None]
    awaiting_feedback_since: Mapped[datetime | None]


class SupportWait(Base):
    """One answered wait: a patient message until the therapist's reply (``reply``), or a
    submitted exercise until the therapist's anchored feedback (``feedback``).

    Written by ``record()`` when the therapist's message arrives and rebuilt from the log by
    ``tuki adherence rebuild``; reports take medians over these rows, never over the log.
    """

    __tablename__ = "support_wait"
    __table_args__ = (
        CheckConstraint("kind IN ('reply', 'feedback')", name="kind"),
        UniqueConstraint("event_id", "kind"),
        Index("ix_support_wait_enrollment_kind", "enrollment_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    # The therapist's message_sent event that ended the wait.
    event_id: Mapped[int] = mapped_column(BigIntId)


class AdherenceThreshold(Base):
    """A clinic's own status thresholds; a clinic without a row uses the settings defaults."""

    __tablename__ = "adherence_threshold"
    __table_args__ = (
        CheckConstraint(
            "falling_behind_days < inactive_days AND inactive_days < dropout_days",
            name="ordered",
        ),
    )

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinic.id", ondelete="CASCADE"), primary_key=True
    )
    falling_behind_days: Mapped[int]
    inactive_days: Mapped[int]
    dropout_days: Mapped[int]
    pace_slack_modules: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
