"""JSON API: login, logout, two-factor, the current user, invitation acceptance."""

from __future__ import annotations

from fastapi import Request, Response

from app.accounts import flows, service, totp
from app.accounts.dependencies import AnyUser, MaybeUser, MidLogin, actor_for
from app.accounts.models import Role, User
from app.accounts.schemas import (
    InvitationAccept,
    LoginRequest,
    LoginResponse,
    MeRead,
    PasswordChange,
    TwoFactorCode,
    TwoFactorSetup,
)
from app.audit import service as audit
from app.clinics import service as clinics_service
from app.common.errors import Invalid, NotAuthenticated, NotFound
from app.common.openapi import ERRORS, with_errors
from app.common.routing import Router
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep

router = Router(tags=["auth"])


async def _user(db: DbSession, user_id: int) -> User:
    user = await service.get_user(db, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


@router.post(
    "/auth/login",
    response_model=LoginResponse,
    responses=with_errors(e429="Too many attempts"),
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    principal: MaybeUser,
) -> LoginResponse:
    """Start a session. Staff with two-factor get ``mfa_required`` and finish at /auth/2fa."""
    if principal is not None:
        await service.end_session(db, principal.session_id)
    user, token, csrf = await flows.password_login(request, db, body.email, body.password)
    flows.set_session_cookie(response, token, settings)
    return LoginResponse(status=flows.login_status(user, settings), csrf_token=csrf, role=user.role)


@router.post("/auth/2fa", response_model=LoginResponse, responses=ERRORS)
async def verify_two_factor(
    body: TwoFactorCode,
    request: Request,
    response: Response,
    principal: MidLogin,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    cipher: CipherDep,
) -> LoginResponse:
    """Finish login with a one-time code; the session token is replaced."""
    user = await _user(db, principal.user_id)
    now = clock.now()
    if not await service.verify_second_factor(db, user, body.code, cipher=cipher, now=now):
        await audit.record(
            db,
            actor_for(request, principal),
            action="login_2fa",
            resource_type="session",
            outcome="failed",
        )
        raise NotAuthenticated(
            "That code is not valid. Codes can be used only once.", code="mfa_invalid"
        ).keep_writes()
    token, session = await flows.finish_second_factor(request, db, principal, user, now=now)
    flows.set_session_cookie(response, token, settings)
    return LoginResponse(status="ok", csrf_token=session.csrf_token, role=user.role)


@router.post("/auth/2fa/setup", response_model=TwoFactorSetup, responses=ERRORS)
async def start_two_factor_setup(
    principal: MidLogin, db: DbSession, cipher: CipherDep
) -> TwoFactorSetup:
    """Create a new TOTP secret for the caller; it takes effect after /auth/2fa/confirm."""
    user = await _user(db, principal.user_id)
    if user.totp_enabled_at is not None:
        raise Invalid(
            "Two-factor authentication is already on for this account.", code="mfa_already_enabled"
        )
    secret = await service.start_totp_enrolment(db, user, cipher=cipher)
    return TwoFactorSetup(secret=secret, otpauth_uri=totp.provisioning_uri(secret, user.email))


@router.post("/auth/2fa/confirm", response_model=LoginResponse, responses=ERRORS)
async def confirm_two_factor_setup(
    body: TwoFactorCode,
    request: Request,
    response: Response,
    principal: MidLogin,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    cipher: CipherDep,
) -> LoginResponse:
    """Turn two-factor on with a first valid code; other sessions are ended."""
    user = await _user(db, principal.user_id)
    if user.totp_enabled_at is not None:
        raise Invalid(
            "Two-factor authentication is already on for this account.", code="mfa_already_enabled"
        )
    now = clock.now()
    token, session = await flows.enable_second_factor(
        request, db, principal, user, body.code, cipher=cipher, now=now
    )
    flows.set_session_cookie(response, token, settings)
    return LoginResponse(status="ok", csrf_token=session.csrf_token, role=user.role)


@router.post("/auth/logout", status_code=204, responses=ERRORS)
async def logout(
    request: Request, principal: MidLogin, db: DbSession, settings: SettingsDep
) -> Response:
    """End this session on the server and clear the cookie."""
    await service.end_session(db, principal.session_id)
    await audit.record(
        db,
        actor_for(request, principal),
        action="logout",
        resource_type="session",
        resource_id=principal.session_id,
    )
    response = Response(status_code=204)
    flows.clear_session_cookie(response, settings)
    return response


@router.post("/auth/password", status_code=204, responses=ERRORS)
async def change_password(
    body: PasswordChange,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Change the password; every session of this user ends, this one included."""
    user = await _user(db, principal.user_id)
    await service.change_password(
        db, user, body.current_password, body.new_password, settings=settings, now=clock.now()
    )
    await audit.record(
        db,
        actor_for(request, principal),
        action="change_password",
        resource_type="user",
        resource_id=user.id,
    )
    response = Response(status_code=204)
    flows.clear_session_cookie(response, settings)
    return response


@router.get("/me", response_model=MeRead, responses=ERRORS)
async def me(principal: MidLogin, db: DbSession) -> MeRead:
    """Who is logged in, with the CSRF token scripts need for unsafe requests."""
    user = await _user(db, principal.user_id)
    enrollment_id = None
    if principal.role is Role.PATIENT and principal.patient_id is not None:
        enrollment = await clinics_service.current_enrollment_for_patient(db, principal.patient_id)
        enrollment_id = enrollment.id if enrollment else None
    return MeRead(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        clinic_id=user.clinic_id,
        two_factor_enabled=user.totp_enabled_at is not None,
        csrf_token=principal.csrf_token,
        enrollment_id=enrollment_id,
    )


@router.post(
    "/invitations/{token}/accept",
    response_model=LoginResponse,
    responses={
        **ERRORS,
        404: {"description": "Unknown link"},
        410: {"description": "Expired or used"},
    },
)
async def accept_invitation(
    token: str,
    body: InvitationAccept,
    request: Request,
    response: Response,
    principal: MaybeUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> LoginResponse:
    """Set a password from an invitation link and log straight in."""
    now = clock.now()
    user, session_token, session = await flows.accept_invitation(
        request, db, token, body.password, now=now
    )
    flows.set_session_cookie(response, session_token, settings)
    return LoginResponse(
        status=flows.login_status(user, settings), csrf_token=session.csrf_token, role=user.role
    )
