"""Reminder rows (the truth the sweeps work from), patient preferences, clinic rules, in-app notifications."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base, BigIntId


class Reminder(Base):
    """One message on one channel: planned, claimed under a lease, then sent, failed or cancelled.

    ``dedupe_key`` is unique per (enrollment or user, rule, period, channel), so planning
    twice inserts nothing new and a sender can use it as an idempotency key.
    """

    __tablename__ = "reminder"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("channel IN ('in_app', 'email', 'sms')", name="channel"),
        CheckConstraint("audience IN ('patient', 'staff')", name="audience"),
        Index("ix_reminder_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_reminder_enrollment_rule", "enrollment_id", "rule"),
        Index("ix_reminder_clinic_created_at", "clinic_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE")
    )
    recipient_user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    due_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ReminderPreference(Base):
    """A patient's own choices for one enrollment; without a row the clinic defaults apply."""

    __tablename__ = "reminder_preference"
    __table_args__ = (CheckConstraint("program_weekday BETWEEN 0 AND 6", name="program_weekday"),)

    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE"), primary_key=True
    )
    email_enabled: Mapped[bool] = mapped_column(default=True)
    sms_enabled: Mapped[bool] = mapped_column(default=False)
    weekdays: Mapped[list[int]] = mapped_column(JSON)  # 0 = Monday
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    paused_until: Mapped[datetime | None]
    program_weekday: Mapped[int | None]
    program_time: Mapped[time | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class ReminderRuleConfig(Base):
    """A clinic's own thresholds; a clinic without a row uses the defaults from settings."""

    __tablename__ = "reminder_rule_config"

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinic.id", ondelete="CASCADE"), primary_key=True
    )
    inactivity_enabled: Mapped[bool]
    inactivity_days_1: Mapped[int]
    inactivity_days_2: Mapped[int]
    inactivity_days_3: Mapped[int]
    dropout_alert_enabled: Mapped[bool]
    max_nudges_per_lapse: Mapped[int]
    new_module_enabled: Mapped[bool]
    new_module_delay_minutes: Mapped[int]
    questionnaire_enabled: Mapped[bool]
    questionnaire_after_hours: Mapped[int]
    unread_message_enabled: Mapped[bool]
    unread_message_hours: Mapped[int]
    program_time_enabled: Mapped[bool]
    staff_reminders_enabled: Mapped[bool]
    response_promise_hours: Mapped[int]
    response_warning_hours: Mapped[int]
    feedback_overdue_days: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class Notification(Base):
    """An in-app message behind the bell. One per in-app reminder at most (unique reminder_id)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_read_at", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    reminder_id: Mapped[int | None] = mapped_column(
        ForeignKey("reminder.id", ondelete="SET NULL"), unique=True
    )
    text: Mapped[str] = mapped_column(String(200))
    link: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    read_at: Mapped[datetime | None]
