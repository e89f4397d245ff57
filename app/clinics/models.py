"""Clinics, patients and their enrollments (patient x program x therapist)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin


class EnrollmentStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    DROPPED = "dropped"
    CLOSED = "closed"


OPEN_STATUSES = (EnrollmentStatus.INVITED, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


RETENTION_DAYS_MIN = 365
RETENTION_DAYS_MAX = 36500


class Clinic(TimestampMixin, Base):
    __tablename__ = "clinic"
    __table_args__ = (
        CheckConstraint(
            f"retention_days IS NULL OR (retention_days >= {RETENTION_DAYS_MIN} "
            f"AND retention_days <= {RETENTION_DAYS_MAX})",
            name="retention_days",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Helsinki")
    emergency_number: Mapped[str] = mapped_column(String(32), default="112")
    crisis_line_name: Mapped[str] = mapped_column(String(120), default="National crisis line")
    crisis_line_number: Mapped[str | None] = mapped_column(String(32))
    # Days after an enrollment ends before the retention job pseudonymises it; NULL keeps it.
    retention_days: Mapped[int | None]
    # The clinic's language: reminders to someone who chose none are written in it, and
    # pages fall back to it when the browser asks for none of ours.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")


class Patient(TimestampMixin, Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Helsinki")


class Enrollment(TimestampMixin, Base):
    __tablename__ = "enrollment"
    __table_args__ = (
        CheckConstraint(
            "status IN ('invited', 'active', 'paused', 'completed', 'dropped', 'closed')",
            name="status",
        ),
        Index("ix_enrollment_therapist_status", "therapist_id", "status"),
        Index("ix_enrollment_clinic_status", "clinic_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), index=True
    )
    therapist_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    program: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.INVITED)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    activated_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    pseudonymised_at: Mapped[datetime | None]
