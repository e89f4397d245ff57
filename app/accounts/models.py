"""Users, server-side sessions, invitations and login throttling."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.common.clock import utc_now
from app.db import Base, TimestampMixin


class Role(enum.StrEnum):
    ADMIN = "admin"
    THERAPIST = "therapist"
    PATIENT = "patient"


class User(TimestampMixin, Base):
    __tablename__ = "user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'therapist', 'patient')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    # NULL: follow the browser's Accept-Language header.
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None]
    totp_last_timecode: Mapped[int | None]

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.ADMIN, Role.THERAPIST)

    @property
    def first_name(self) -> str:
        return self.full_name.split(" ", 1)[0]


class UserSession(Base):
    """A login. The cookie carries a random token; only its keyed hash is stored here."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    mfa_verified_at: Mapped[datetime | None]
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class Invitation(TimestampMixin, Base):
    """A one-time link that lets a new patient or therapist set their password."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class LoginThrottle(Base):
    """Failure counters per account and per client address, shared by every instance via the DB."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


Index("ix_user_session_user_expires", UserSession.user_id, UserSession.expires_at)
