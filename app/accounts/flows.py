"""Login steps shared by the JSON API and the HTML pages."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service
from app.accounts.dependencies import session_cookie_name
from app.accounts.models import Role, User
from app.adherence import service as adherence
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics import service as clinics_service
from app.common.errors import NotAuthenticated, TooManyRequests
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
        raise TooManyRequests(
            f"Too many unsuccessful attempts. Please wait about {minutes} minute{'s' if minutes != 1 else ''} and try again.",
            retry_after_seconds=result.retry_after,
        ).keep_writes()
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
