"""Login, sessions, throttling, invitations and two-factor enrolment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Select, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import passwords, totp
from app.accounts.models import Invitation, LoginThrottle, Role, User, UserSession
from app.common.clock import as_utc
from app.common.crypto import FieldCipher, new_token, token_hash
from app.common.errors import Gone, Invalid, NotFound
from app.config import Settings

LOGIN_FAILED_MESSAGE = "The e-mail address or password is not correct."
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Throttling ------------------------------------------------------------------------


def _throttle_keys(email: str, ip_address: str | None) -> list[tuple[str, str]]:
    keys = [("account", f"account:{normalise_email(email)}")]
    if ip_address:
        keys.append(("address", f"address:{ip_address}"))
    return keys


async def _locked_for(db: AsyncSession, keys: list[str], now: datetime) -> int:
    rows = await db.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    remaining = 0
    for row in rows:
        if row.locked_until is not None and as_utc(row.locked_until) > now:
            remaining = max(remaining, int((as_utc(row.locked_until) - now).total_seconds()) + 1)
    return remaining


async def _register_failure(
    db: AsyncSession, key: str, limit: int, settings: Settings, now: datetime
) -> None:
    window = timedelta(minutes=settings.login_failure_window_minutes)
    row = await db.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
        db.add(row)
    elif now - as_utc(row.window_started_at) > window:
        row.failures = 0
        row.window_started_at = now
        row.locked_until = None
    row.failures += 1
    if row.failures >= limit:
        row.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
    await db.flush()


async def _clear_failures(db: AsyncSession, key: str) -> None:
    await db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


# Login and sessions ------------------------------------------------------------------


@dataclass
class LoginResult:
    user: User | None
    token: str | None = None
    session: UserSession | None = None
    error: str | None = None
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return self.user is not None and self.token is not None


async def authenticate(
    db: AsyncSession,
    *,
    email: str,
    password: str,
    ip_address: str | None,
    user_agent: str | None,
    settings: Settings,
    now: datetime,
) -> LoginResult:
    """Check a password and open a session. Failures are recorded, never raised,
    so the failure counters commit with the request."""
    keys = _throttle_keys(email, ip_address)
    locked = await _locked_for(db, [k for _, k in keys], now)
    if locked:
        return LoginResult(user=None, error="locked", retry_after=locked)
    user = await db.scalar(select(User).where(User.email == normalise_email(email)))
    usable = user is not None and user.is_active
    ok, new_hash = await passwords.verify_password(
        password, user.password_hash if usable and user else None
    )
    if not ok or user is None or not usable:
        for kind, key in keys:
            limit = (
                settings.login_max_failures_per_account
                if kind == "account"
                else settings.login_max_failures_per_address
            )
            await _register_failure(db, key, limit, settings, now)
        return LoginResult(user=None, error="invalid")
    if new_hash:
        user.password_hash = new_hash
    await _clear_failures(db, keys[0][1])
    token, session = await create_session(
        db,
        user,
        settings=settings,
        now=now,
        ip_address=ip_address,
        user_agent=user_agent,
        mfa_verified=user.totp_enabled_at is None,
    )
    return LoginResult(user=user, token=token, session=session)


async def create_session(
    db: AsyncSession,
    user: User,
    *,
    settings: Settings,
    now: datetime,
    ip_address: str | None,
    user_agent: str | None,
    mfa_verified: bool,
) -> tuple[str, UserSession]:
    """A fresh random token every time (login, 2FA), so a planted token is never promoted."""
    token = new_token()
    session = UserSession(
        token_hash=token_hash(settings.secret_key.get_secret_value(), token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        mfa_verified_at=now if mfa_verified else None,
        ip_address=ip_address,
        user_agent=(user_agent or "")[:300] or None,
    )
    db.add(session)
    await db.flush()
    return token, session


def session_lookup() -> Select[UserSession, User]:
    """The statement :func:`resolve_session` sends, built once at import.

    A caller may add columns and joins to it (free to use the ``now`` bind parameter), so
    its per-request facts about the user cost no second round trip. Building a statement
    costs more CPU than sending it, so callers keep the result rather than rebuild it.
    """
    return (
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == bindparam("token_hash"))
    )


_PLAIN_LOOKUP = session_lookup()


async def resolve_session(
    db: AsyncSession,
    token: str,
    *,
    settings: Settings,
    now: datetime,
    lookup: Executable = _PLAIN_LOOKUP,
) -> tuple[UserSession, User, tuple[Any, ...]] | None:
    """The live session for a cookie token, enforcing idle and absolute expiry server-side.

    ``lookup`` comes from :func:`session_lookup`; the values of its extra columns come
    back third.
    """
    hashed = token_hash(settings.secret_key.get_secret_value(), token)
    row = (await db.execute(lookup, {"token_hash": hashed, "now": now})).one_or_none()
    if row is None:
        return None
    session, user, *extra_values = row
    idle_limit = timedelta(minutes=settings.session_idle_minutes)
    if (
        not user.is_active
        or as_utc(session.expires_at) <= now
        or now - as_utc(session.last_seen_at) > idle_limit
    ):
        await db.execute(delete(UserSession).where(UserSession.id == session.id))
        return None
    if now - as_utc(session.last_seen_at) > SESSION_TOUCH_INTERVAL:
        session.last_seen_at = now
    return session, user, tuple(extra_values)


async def end_session(db: AsyncSession, session_id: int) -> None:
    await db.execute(delete(UserSession).where(UserSession.id == session_id))


async def end_all_sessions(db: AsyncSession, user_id: int) -> None:
    """Password change, deactivation and 2FA changes log the user out everywhere."""
    await db.execute(delete(UserSession).where(UserSession.user_id == user_id))


async def purge_expired_sessions(db: AsyncSession, *, now: datetime) -> int:
    result = await db.execute(delete(UserSession).where(UserSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


# Two-factor ------------------------------------------------------------------------


async def verify_second_factor(
    db: AsyncSession, user: User, code: str, *, cipher: FieldCipher, now: datetime
) -> bool:
    """Accept a TOTP code once: the stored time step is advanced atomically."""
    if not user.totp_secret_encrypted or not user.totp_enabled_at:
        return False
    timecode = totp.matching_timecode(cipher.decrypt(user.totp_secret_encrypted), code, now)
    if timecode is None:
        return False
    result = await db.execute(
        update(User)
        .where(User.id == user.id)
        .where((User.totp_last_timecode.is_(None)) | (User.totp_last_timecode < timecode))
        .values(totp_last_timecode=timecode)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def start_totp_enrolment(db: AsyncSession, user: User, *, cipher: FieldCipher) -> str:
    """Store a new, not yet enabled secret; it only takes effect once a code confirms it."""
    secret = totp.new_secret()
    user.totp_secret_encrypted = cipher.encrypt(secret)
    user.totp_enabled_at = None
    user.totp_last_timecode = None
    await db.flush()
    return secret


async def confirm_totp_enrolment(
    db: AsyncSession, user: User, code: str, *, cipher: FieldCipher, now: datetime
) -> None:
    if not user.totp_secret_encrypted:
        raise Invalid("Start the two-factor set-up first.", field="code")
    timecode = totp.matching_timecode(cipher.decrypt(user.totp_secret_encrypted), code, now)
    if timecode is None:
        raise Invalid(
            "That code did not match. Check the time on your phone and try again.", field="code"
        )
    user.totp_enabled_at = now
    user.totp_last_timecode = timecode
    await db.flush()


# Invitations -----------------------------------------------------------------------


async def create_invitation(
    db: AsyncSession,
    *,
    user_id: int,
    enrollment_id: int | None,
    created_by_id: int | None,
    settings: Settings,
    now: datetime,
) -> str:
    """Revoke any open invitation for the user and issue a new one; returns the raw token."""
    await db.execute(
        update(Invitation)
        .where(
            Invitation.user_id == user_id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_token()
    db.add(
        Invitation(
            user_id=user_id,
            enrollment_id=enrollment_id,
            token_hash=token_hash(settings.secret_key.get_secret_value(), token),
            created_at=now,
            expires_at=now + timedelta(days=settings.invitation_valid_days),
            created_by_id=created_by_id,
        )
    )
    await db.flush()
    return token


async def usable_invitation(
    db: AsyncSession, token: str, *, settings: Settings, now: datetime
) -> tuple[Invitation, User]:
    """The invitation behind a link, or a clear reason why it no longer works."""
    row = (
        await db.execute(
            select(Invitation, User)
            .join(User, User.id == Invitation.user_id)
            .where(
                Invitation.token_hash == token_hash(settings.secret_key.get_secret_value(), token)
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound("This invitation link is not valid. Check that you copied the whole link.")
    invitation, user = row
    if invitation.used_at is not None:
        raise Gone(
            "This invitation has already been used. Log in with your e-mail and password.",
            code="invitation_used",
        )
    if invitation.revoked_at is not None:
        raise Gone(
            "A newer invitation has been sent to you; please use the latest link.",
            code="invitation_replaced",
        )
    if as_utc(invitation.expires_at) <= now:
        raise Gone(
            "This invitation has expired. Ask your clinic to send a new one.",
            code="invitation_expired",
        )
    if not user.is_active:
        raise Gone(
            "This account is no longer active. Please contact your clinic.", code="account_inactive"
        )
    return invitation, user


async def accept_invitation(
    db: AsyncSession, token: str, password: str, *, settings: Settings, now: datetime
) -> tuple[Invitation, User]:
    """Set the password and spend the invitation; the caller activates the enrollment."""
    invitation, user = await usable_invitation(db, token, settings=settings, now=now)
    problem = passwords.password_problem(
        password, min_length=settings.password_min_length, email=user.email, name=user.full_name
    )
    if problem:
        raise Invalid(problem, field="password", code="weak_password")
    result = await db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise Gone("This invitation has already been used.", code="invitation_used")
    user.password_hash = await passwords.hash_password(password)
    user.password_changed_at = now
    await end_all_sessions(db, user.id)
    await db.flush()
    return invitation, user


async def change_password(
    db: AsyncSession, user: User, current: str, new: str, *, settings: Settings, now: datetime
) -> None:
    ok, _ = await passwords.verify_password(current, user.password_hash)
    if not ok:
        raise Invalid("Your current password is not correct.", field="current_password")
    problem = passwords.password_problem(
        new, min_length=settings.password_min_length, email=user.email, name=user.full_name
    )
    if problem:
        raise Invalid(problem, field="new_password", code="weak_password")
    user.password_hash = await passwords.hash_password(new)
    user.password_changed_at = now
    await end_all_sessions(db, user.id)
    await db.flush()


async def get_user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)


async def email_taken(db: AsyncSession, email: str) -> bool:
    return (
        await db.scalar(select(User.id).where(User.email == normalise_email(email)))
    ) is not None


async def create_user(
    db: AsyncSession,
    *,
    clinic_id: int,
    email: str,
    full_name: str,
    role: Role,
    now: datetime,
    password_hash: str | None = None,
) -> User:
    user = User(
        clinic_id=clinic_id,
        email=normalise_email(email),
        full_name=full_name.strip(),
        role=role.value,
        password_hash=password_hash,
        password_changed_at=now if password_hash else None,
        created_at=now,
        is_active=True,
    )
    db.add(user)
    await db.flush()
    return user
