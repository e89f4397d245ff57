"""Login steps shared by the JSON API and the HTML pages."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service
from app.accounts.dependencies import actor_for, session_cookie_name
from app.accounts.models import Role, User, UserSession
from app.accounts.policy import Principal
from app.adherence import service as adherence
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics import service as clinics_service
from app.common.crypto import FieldCipher
from app.common.errors import NotAuthenticated, TooManyRequests
from app.common.messages import N_
from app.config import Settings
from app.deps import client_ip


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        session_cookie_name(settings),
        token,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


async def password_login(
    request: Request, db: AsyncSession, email: str, password: str
) -> tuple[User, str, str]:
    """Verify the password and open a session; returns (user, token, csrf token).

    Failures are recorded in the same transaction and reported with one generic message.
    """
    settings: Settings = request.app.state.settings
    now = request.app.state.clock.now()
    result = await service.authenticate(
        db,
        email=email,
        password=password,
        ip_address=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        settings=settings,
        now=now,
    )
    anonymous = Actor(
        user_id=None,
        role=None,
        clinic_id=None,
        ip_address=client_ip(request),
        request_path=request.url.path,
    )
    if result.error == "locked":
        await audit.record(db, anonymous, action="login", resource_type="session", outcome="locked")
        minutes = max(1, round(result.retry_after / 60))
        wait = (
            N_("Too many unsuccessful attempts. Please wait about a minute and try again.")
            if minutes == 1
            else N_(
                "Too many unsuccessful attempts. Please wait about %(minutes)s minutes and try "
                "again.",
                minutes=minutes,
            )
        )
        raise TooManyRequests(wait, retry_after_seconds=result.retry_after).keep_writes()
    if not result.ok or result.user is None or result.token is None or result.session is None:
        await audit.record(db, anonymous, action="login", resource_type="session", outcome="failed")
        raise NotAuthenticated(service.LOGIN_FAILED_MESSAGE, code="login_failed").keep_writes()
    user = result.user
    await audit.record(
        db,
        Actor(
            user_id=user.id,
            role=user.role,
            clinic_id=user.clinic_id,
            ip_address=client_ip(request),
            request_path=request.url.path,
        ),
        action="login",
        resource_type="session",
        resource_id=result.session.id,
    )
    if user.role == Role.PATIENT:
        for enrollment_id in await clinics_service.open_enrollment_ids_for_user(db, user.id):
            await adherence.record(
                db, enrollment_id=enrollment_id, kind=adherence.EventKind.LOGIN, at=now
            )
    return user, result.token, result.session.csrf_token


def login_status(user: User, settings: Settings) -> str:
    if user.totp_enabled_at is not None:
        return "mfa_required"
    if user.is_staff and settings.staff_2fa_required:
        return "mfa_setup_required"
    return "ok"


async def open_session(
    request: Request, db: AsyncSession, user: User, *, mfa_verified: bool, now: datetime
) -> tuple[str, UserSession]:
    """A fresh session for this browser: new token, new CSRF token."""
    return await service.create_session(
        db,
        user,
        settings=request.app.state.settings,
        now=now,
        ip_address=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        mfa_verified=mfa_verified,
    )


async def finish_second_factor(
    request: Request, db: AsyncSession, principal: Principal, user: User, *, now: datetime
) -> tuple[str, UserSession]:
    """Swap the half-logged-in session for a verified one, so the pre-2FA token dies."""
    await service.end_session(db, principal.session_id)
    token, session = await open_session(request, db, user, mfa_verified=True, now=now)
    await audit.record(
        db,
        actor_for(request, principal),
        action="login_2fa",
        resource_type="session",
        resource_id=session.id,
    )
    return token, session


async def enable_second_factor(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    user: User,
    code: str,
    *,
    cipher: FieldCipher,
    now: datetime,
) -> tuple[str, UserSession]:
    """Turn TOTP on with a first valid code; every other session of the user ends."""
    await service.confirm_totp_enrolment(db, user, code, cipher=cipher, now=now)
    await service.end_all_sessions(db, user.id)
    token, session = await open_session(request, db, user, mfa_verified=True, now=now)
    await audit.record(
        db,
        actor_for(request, principal),
        action="enable_2fa",
        resource_type="user",
        resource_id=user.id,
    )
    return token, session


async def accept_invitation(
    request: Request, db: AsyncSession, token: str, password: str, *, now: datetime
) -> tuple[User, str, UserSession]:
    """Set the password, start the treatment the invitation belongs to, and log in."""
    invitation, user = await service.accept_invitation(
        db, token, password, settings=request.app.state.settings, now=now
    )
    await clinics_service.activate_after_invitation(db, invitation.enrollment_id, now=now)
    session_token, session = await open_session(request, db, user, mfa_verified=False, now=now)
    await audit.record(
        db,
        actor_for(request, None),
        action="accept_invitation",
        resource_type="invitation",
        resource_id=invitation.id,
        clinic_id=user.clinic_id,
    )
    return user, session_token, session
