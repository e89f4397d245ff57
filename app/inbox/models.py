"""Messages between a patient and their therapist, snippets (small gestures) and absences.

A thread is an enrollment: every message belongs to one. Bodies are PHI and stored
encrypted; the function tags are booleans so reports can count them on both databases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base

FUNCTIONS = ("autonomy", "alliance", "emotion_regulation")
"""What a therapist's gesture is for (DESIGN.md): choices, commitment, help with feelings."""


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint("sender_role IN ('patient', 'therapist')", name="sender_role"),
        CheckConstraint(
            "exercise_response_id IS NULL OR questionnaire_response_id IS NULL", name="one_anchor"
        ),
        # The thread, newest first.
        Index("ix_message_enrollment_created", "enrollment_id", "created_at"),
        # Triage: the last message of each side per thread.
        Index("ix_message_enrollment_sender_created", "enrollment_id", "sender_role", "created_at"),
        # The unread badge and read receipts.
        Index("ix_message_enrollment_sender_read", "enrollment_id", "sender_role", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    sender_role: Mapped[str] = mapped_column(String(16))
    body_encrypted: Mapped[str] = mapped_column(Text)
    exercise_response_id: Mapped[int | None] = mapped_column(
        ForeignKey("exercise_response.id", ondelete="SET NULL"), index=True
    )
    questionnaire_response_id: Mapped[int | None] = mapped_column(
        ForeignKey("questionnaire_response.id", ondelete="SET NULL"), index=True
    )
    tag_autonomy: Mapped[bool] = mapped_column(default=False)
    tag_alliance: Mapped[bool] = mapped_column(default=False)
    tag_emotion_regulation: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    read_at: Mapped[datetime | None]
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    @property
    def functions(self) -> list[str]:
        return [name for name in FUNCTIONS if getattr(self, f"tag_{name}")]


class Snippet(Base):
    """A short reusable gesture with placeholders.

    ``clinic_id`` NULL: one of Tuki's built-in defaults, shown to every clinic. Otherwise
    the therapist's own (``shared`` False) or shared with their clinic (``shared`` True).
    """

    __tablename__ = "snippet"
    __table_args__ = (
        CheckConstraint(
            "function IN ('autonomy', 'alliance', 'emotion_regulation')", name="function"
        ),
        Index("ix_snippet_clinic_owner", "clinic_id", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    shared: Mapped[bool] = mapped_column(default=False)
    function: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Absence(Base):
    """A therapist away from ``starts_at`` to ``ends_at``; a colleague covers their patients."""

    __tablename__ = "absence"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_absence_covering_period", "covering_therapist_id", "starts_at", "ends_at"),
        Index("ix_absence_therapist_period", "therapist_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id", ondelete="CASCADE"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    covering_therapist_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
