"""Resolving the session cookie into a Principal, once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import String, bindparam, cast, func, select

from app.accounts import service
from app.accounts.models import Role, User
from app.accounts.policy import (
    ADMIN,
    AUTHENTICATED,
    LOGIN_IN_PROGRESS,
    PATIENT,
    PUBLIC,
    STAFF,
    THERAPIST,
    AuthState,
    CrisisContacts,
    Principal,
)
from app.audit.service import Actor
from app.clinics.models import Clinic, Patient
from app.config import Settings
from app.db import UTCDateTime, get_db
from app.deps import client_ip
from app.inbox.models import Absence

_UNSET = object()


# Read in the session lookup's own statement, which every request sends anyway:
# - the colleagues whose absence the user covers right now, as "3,7" (NULL for none); a
#   second round trip for it was a sixth of an API read's time (benchmarks/README.md, A);
# - the clinic's time zone, which every page's times follow (``reader_zone``), and its
#   language, which pages fall back to;
# - for patients, their patient row, own zone and the clinic's crisis contacts.
_NOW = bindparam("now", type_=UTCDateTime())
_COVERED_COLLEAGUES = (
    select(func.aggregate_strings(cast(Absence.therapist_id, String), ","))
    .where(
        Absence.covering_therapist_id == User.id,
        Absence.clinic_id == User.clinic_id,
        Absence.starts_at <= _NOW,
        Absence.ends_at > _NOW,
    )
    .correlate(User)
    .scalar_subquery()
)
_SESSION_LOOKUP = (
    service.session_lookup()
    .add_columns(
        _COVERED_COLLEAGUES,
        Clinic.timezone,
        Clinic.language,
        Patient.id,
        Patient.timezone,
        Clinic.emergency_number,
        Clinic.crisis_line_name,
        Clinic.crisis_line_number,
    )
    .outerjoin(Clinic, Clinic.id == User.clinic_id)
    .outerjoin(Patient, Patient.user_id == User.id)
)


def session_cookie_name(settings: Settings) -> str:
    """``__Host-`` binds the cookie to this exact origin over HTTPS."""
    return "__Host-tuki_session" if settings.secure_cookies else "tuki_session"


async def load_principal(request: Request) -> Principal | None:
    """The caller, or None for anonymous. Uses the request's own DB session."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    settings: Settings = request.app.state.settings
    token = request.cookies.get(session_cookie_name(settings))
    principal: Principal | None = None
    if token:
        db = request.state.db
        now = request.app.state.clock.now()
        found = await service.resolve_session(
            db, token, settings=settings, now=now, lookup=_SESSION_LOOKUP
        )
        if found is not None:
            session, user, extra = found
            covered, clinic_timezone, clinic_language, patient_row_id, own_timezone, *contacts = (
                extra
            )
            # The session's identity map holds rows weakly: keeping the user for the
            # request lets later ``db.get(User, …)`` (the locale, the account) answer
            # without another query.
            request.state.user = user
            patient_id = None
            crisis = None
            covering_for: frozenset[int] = frozenset()
            if user.role == Role.THERAPIST and covered:
                covering_for = frozenset(int(part) for part in str(covered).split(","))
            if user.role == Role.PATIENT and patient_row_id is not None:
                patient_id = patient_row_id
                crisis = CrisisContacts(*contacts)
            else:
                own_timezone = None
            if user.totp_enabled_at is not None and session.mfa_verified_at is None:
                state = AuthState.MFA_PENDING
            elif user.is_staff and settings.staff_2fa_required and user.totp_enabled_at is None:
                state = AuthState.MFA_SETUP
            else:
                state = AuthState.FULL
            principal = Principal(
                user_id=user.id,
                role=Role(user.role),
                clinic_id=user.clinic_id,
                email=user.email,
                full_name=user.full_name,
                session_id=session.id,
                csrf_token=session.csrf_token,
                auth_state=state,
                patient_id=patient_id,
                crisis=crisis,
                covering_for=covering_for,
                clinic_timezone=clinic_timezone,
                own_timezone=own_timezone,
                clinic_language=clinic_language,
            )
    request.state.principal = principal
    return principal


def actor_for(request: Request, principal: Principal | None) -> Actor:
    return Actor(
        user_id=principal.user_id if principal else None,
        role=principal.role.value if principal else None,
        clinic_id=principal.clinic_id if principal else None,
        ip_address=client_ip(request),
        request_path=request.url.path,
    )


async def bind_db(
    request: Request, db: Annotated[object, Depends(get_db, scope="function")]
) -> None:
    """Make the request's unit-of-work session reachable for the guard."""
    request.state.db = db


MaybeUser = Annotated[Principal | None, Depends(PUBLIC)]
AnyUser = Annotated[Principal, Depends(AUTHENTICATED)]
MidLogin = Annotated[Principal, Depends(LOGIN_IN_PROGRESS)]
PatientUser = Annotated[Principal, Depends(PATIENT)]
TherapistUser = Annotated[Principal, Depends(THERAPIST)]
AdminUser = Annotated[Principal, Depends(ADMIN)]
StaffUser = Annotated[Principal, Depends(STAFF)]
