"""HTML pages: login, two-factor, invitation, account settings, and the role landing redirect."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.accounts import flows, service, totp
from app.accounts.dependencies import AnyUser, MaybeUser, MidLogin, actor_for
from app.accounts.models import Role
from app.accounts.policy import AuthState, Principal
from app.audit import service as audit
from app.common.errors import AppError, Invalid, NotFound, TooManyRequests
from app.common.routing import Router
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep
from app.templating import render
from app.web.forms import form_data
from app.web.i18n import LANGUAGE_NAMES, SUPPORTED_LOCALES, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

HOME_FOR_ROLE = {Role.ADMIN: "/admin", Role.THERAPIST: "/therapist", Role.PATIENT: "/patient"}


def _home(principal: Principal) -> str:
    if principal.auth_state is AuthState.MFA_PENDING:
        return "/login/2fa"
    if principal.auth_state is AuthState.MFA_SETUP:
        return "/account/2fa"
    return HOME_FOR_ROLE[principal.role]


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths, so the login form cannot redirect elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/")
async def index(principal: MaybeUser) -> Response:
    """Send each role to its own home page."""
    return RedirectResponse(_home(principal) if principal else "/login", status_code=303)


@router.get("/login")
async def login_page(request: Request, principal: MaybeUser, next: str | None = None) -> Response:
    if principal is not None and principal.auth_state is AuthState.FULL:
        return RedirectResponse(_home(principal), status_code=303)
    return render(request, "login.html", {"form": {"next": _safe_next(next) or ""}})


@router.post("/login")
async def login_submit(
    request: Request, db: DbSession, settings: SettingsDep, principal: MaybeUser
) -> Response:
    data = await form_data(request)
    email, password = data.get("email", ""), data.get("password", "")
    if principal is not None:
        await service.end_session(db, principal.session_id)
    try:
        user, token, _session = await flows.password_login(request, db, email, password)
    except TooManyRequests as exc:
        locked = render(
            request,
            "login.html",
            {"form": {"email": email}, "error": translate(exc.detail)},
            status_code=429,
        )
        locked.headers.update(exc.headers)
        return locked
    except AppError as exc:
        return render(
            request,
            "login.html",
            {
                "form": {"email": email, "next": data.get("next", "")},
                "error": translate(exc.detail),
            },
            status_code=401,
        )
    status = flows.login_status(user, settings)
    next_page = _safe_next(data.get("next"))
    target = {"mfa_required": "/login/2fa", "mfa_setup_required": "/account/2fa"}.get(status)
    if target == "/login/2fa" and next_page:
        target = f"/login/2fa?{urlencode({'next': next_page})}"
    if target is None:
        target = next_page or HOME_FOR_ROLE[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    flows.set_session_cookie(response, token, settings)
    return response


@router.get("/login/2fa")
async def two_factor_page(
    request: Request, principal: MidLogin, next: str | None = None
) -> Response:
    if principal.auth_state is not AuthState.MFA_PENDING:
        return RedirectResponse(_home(principal), status_code=303)
    return render(request, "login_2fa.html", {"next": _safe_next(next) or ""})


@router.post("/login/2fa")
async def two_factor_submit(
    request: Request,
    principal: MidLogin,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    data = await form_data(request)
    user = await service.get_user(db, principal.user_id)
    if user is None:
        raise NotFound(_("User not found."))
    now = clock.now()
    if not await service.verify_second_factor(
        db, user, data.get("code", ""), cipher=cipher, now=now
    ):
        await audit.record(
            db,
            actor_for(request, principal),
            action="login_2fa",
            resource_type="session",
            outcome="failed",
        )
        return render(
            request,
            "login_2fa.html",
            {
                "next": _safe_next(data.get("next")) or "",
                "error": _("That code is not valid. Codes can be used only once."),
            },
            status_code=401,
        )
    token, _session = await flows.finish_second_factor(request, db, principal, user, now=now)
    target = _safe_next(data.get("next")) or HOME_FOR_ROLE[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    flows.set_session_cookie(response, token, settings)
    return response


@router.post("/logout")
async def logout_submit(
    request: Request, principal: MidLogin, db: DbSession, settings: SettingsDep
) -> Response:
    await service.end_session(db, principal.session_id)
    await audit.record(
        db,
        actor_for(request, principal),
        action="logout",
        resource_type="session",
        resource_id=principal.session_id,
    )
    response = RedirectResponse("/login", status_code=303)
    flows.clear_session_cookie(response, settings)
    return response


@router.get("/invite/{token}")
async def invitation_page(
    token: str,
    request: Request,
    principal: MaybeUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    try:
        _invitation, user = await service.usable_invitation(
            db, token, settings=settings, now=clock.now()
        )
    except AppError as exc:
        return render(
            request,
            "invite_invalid.html",
            {"message": translate(exc.detail)},
            status_code=exc.status_code,
        )
    return render(
        request,
        "invite.html",
        {"token": token, "invitee": user, "min_length": settings.password_min_length},
    )


@router.post("/invite/{token}")
async def invitation_submit(
    token: str,
    request: Request,
    principal: MaybeUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    data = await form_data(request)
    password, confirm = data.get("password", ""), data.get("password_confirm", "")
    now = clock.now()
    try:
        _invitation, user = await service.usable_invitation(db, token, settings=settings, now=now)
    except AppError as exc:
        return render(
            request,
            "invite_invalid.html",
            {"message": translate(exc.detail)},
            status_code=exc.status_code,
        )
    context = {"token": token, "invitee": user, "min_length": settings.password_min_length}
    if password != confirm:
        return render(
            request,
            "invite.html",
            {**context, "errors": {"password_confirm": _("The two passwords are not the same.")}},
            status_code=422,
        )
    try:
        user, session_token, _session = await flows.accept_invitation(
            request, db, token, password, now=now
        )
    except Invalid as exc:
        return render(
            request,
            "invite.html",
            {**context, "errors": {"password": translate(exc.detail)}},
            status_code=422,
        )
    status = flows.login_status(user, settings)
    target = "/account/2fa" if status == "mfa_setup_required" else HOME_FOR_ROLE[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    flows.set_session_cookie(response, session_token, settings)
    return response


@router.get("/account")
async def account_page(request: Request, principal: AnyUser, db: DbSession) -> Response:
    user = await service.get_user(db, principal.user_id)
    return render(request, "account.html", {"user": user, "language_names": LANGUAGE_NAMES})


@router.post("/account/language")
async def account_language_submit(request: Request, principal: AnyUser, db: DbSession) -> Response:
    """Save the interface language; empty means "follow the browser" (stored as NULL)."""
    data = await form_data(request)
    user = await service.get_user(db, principal.user_id)
    if user is None:
        raise NotFound(_("User not found."))
    choice = data.get("language", "").strip()
    if choice and choice not in SUPPORTED_LOCALES:
        return render(
            request,
            "account.html",
            {
                "user": user,
                "language_names": LANGUAGE_NAMES,
                "errors": {"language": _("Choose one of the languages shown.")},
            },
            status_code=422,
        )
    user.language = choice or None
    await audit.record(
        db,
        actor_for(request, principal),
        action="update",
        resource_type="user",
        resource_id=user.id,
    )
    return RedirectResponse("/account?language=saved", status_code=303)


@router.post("/account/password")
async def account_password_submit(
    request: Request, principal: AnyUser, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    data = await form_data(request)
    user = await service.get_user(db, principal.user_id)
    if user is None:
        raise NotFound(_("User not found."))
    if data.get("new_password") != data.get("new_password_confirm"):
        return render(
            request,
            "account.html",
            {
                "user": user,
                "language_names": LANGUAGE_NAMES,
                "errors": {"new_password_confirm": _("The two new passwords are not the same.")},
            },
            status_code=422,
        )
    try:
        await service.change_password(
            db,
            user,
            data.get("current_password", ""),
            data.get("new_password", ""),
            settings=settings,
            now=clock.now(),
        )
    except Invalid as exc:
        return render(
            request,
            "account.html",
            {
                "user": user,
                "language_names": LANGUAGE_NAMES,
                "errors": {exc.field or "form": translate(exc.detail)},
            },
            status_code=422,
        )
    await audit.record(
        db,
        actor_for(request, principal),
        action="change_password",
        resource_type="user",
        resource_id=user.id,
    )
    response = RedirectResponse("/login?changed=1", status_code=303)
    flows.clear_session_cookie(response, settings)
    return response


@router.get("/account/2fa")
async def two_factor_setup_page(
    request: Request, principal: MidLogin, db: DbSession, cipher: CipherDep
) -> Response:
    user = await service.get_user(db, principal.user_id)
    if user is None:
        raise NotFound(_("User not found."))
    if user.totp_enabled_at is not None:
        return render(request, "account_2fa.html", {"enabled": True})
    if user.totp_secret_encrypted:
        secret = cipher.decrypt(user.totp_secret_encrypted)
    else:
        secret = await service.start_totp_enrolment(db, user, cipher=cipher)
    uri = totp.provisioning_uri(secret, user.email)
    return render(
        request,
        "account_2fa.html",
        {
            "enabled": False,
            "secret": secret,
            "qr": totp.qr_svg_data_uri(uri),
            "required": principal.auth_state is AuthState.MFA_SETUP,
        },
    )


@router.post("/account/2fa")
async def two_factor_setup_submit(
    request: Request,
    principal: MidLogin,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    data = await form_data(request)
    user = await service.get_user(db, principal.user_id)
    if user is None:
        raise NotFound(_("User not found."))
    if user.totp_enabled_at is not None:
        return RedirectResponse("/account/2fa", status_code=303)
    now = clock.now()
    try:
        token, _session = await flows.enable_second_factor(
            request, db, principal, user, data.get("code", ""), cipher=cipher, now=now
        )
    except Invalid as exc:
        if user.totp_secret_encrypted:
            secret = cipher.decrypt(user.totp_secret_encrypted)
        else:
            secret = await service.start_totp_enrolment(db, user, cipher=cipher)
        return render(
            request,
            "account_2fa.html",
            {
                "enabled": False,
                "secret": secret,
                "qr": totp.qr_svg_data_uri(totp.provisioning_uri(secret, user.email)),
                "errors": {"code": translate(exc.detail)},
            },
            status_code=422,
        )
    response = RedirectResponse(HOME_FOR_ROLE[Role(user.role)], status_code=303)
    flows.set_session_cookie(response, token, settings)
    return response
