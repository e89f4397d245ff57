"""HTML pages for clinic admins, therapists' caseload home, and the patient's home."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser, PatientUser, TherapistUser, actor_for
from app.accounts.policy import Principal
from app.clinics import service
from app.clinics.models import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from app.clinics.schemas import (
    ClinicCrisisUpdate,
    EnrollmentCreate,
    EnrollmentUpdate,
    TherapistCreate,
)
from app.common.errors import AppError
from app.common.routing import Router
from app.deps import ClockDep, DbSession, SettingsDep
from app.inbox.pages import work_list_page
from app.programs.catalogue import PROGRAMS, program_title
from app.programs.pages import dashboard as patient_dashboard
from app.templating import reader_zone, render
from app.web.forms import form_data, validate
from app.web.i18n import LANGUAGE_NAMES, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

PER_PAGE = 25
STATUSES = ("invited", "active", "paused", "completed", "dropped", "closed")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@router.get("/admin")
async def admin_home(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    clock: ClockDep,
    status: str | None = None,
    program: str | None = None,
    therapist: str | None = None,
    q: str | None = None,
    page: int = 1,
) -> Response:
    """Therapists, the enrollment list with filters, and the way into enrolling."""
    page = max(1, min(page, 10_000))
    items, total = await service.list_enrollments(
        db,
        principal,
        actor_for(request, principal),
        status=status if status in STATUSES else None,
        program=program if program in PROGRAMS else None,
        therapist_id=_int_or_none(therapist),
        search=(q or "").strip()[:100] or None,
        page=page,
        per_page=PER_PAGE,
        now=clock.now(),
    )
    therapists = await service.list_therapists(db, principal.clinic_id)
    clinic = await service.get_clinic(db, principal.clinic_id)
    return render(
        request,
        "admin/home.html",
        {
            "clinic": clinic,
            "enrollments": items,
            "total": total,
            "page": page,
            "per_page": PER_PAGE,
            "pages": max(1, (total + PER_PAGE - 1) // PER_PAGE),
            "therapists": therapists,
            "programs": PROGRAMS,
            "statuses": STATUSES,
            "filters": {
                "status": status or "",
                "program": program or "",
                "therapist": therapist or "",
                "q": q or "",
            },
        },
    )


async def _enroll_form(
    request: Request,
    principal: Any,
    db: DbSession,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    therapists = [t for t in await service.list_therapists(db, principal.clinic_id) if t.is_active]
    return render(
        request,
        "admin/enroll.html",
        {"programs": PROGRAMS, "therapists": therapists, "form": form, "errors": errors},
        status_code=status_code,
    )


@router.get("/admin/enroll")
async def enroll_page(request: Request, principal: AdminUser, db: DbSession) -> Response:
    return await _enroll_form(
        request, principal, db, form={"timezone": "Europe/Helsinki"}, errors={}
    )


@router.post("/admin/enroll")
async def enroll_submit(
    request: Request, principal: AdminUser, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    data = await form_data(request)
    cleaned = {k: v for k, v in data.items() if not (k == "phone" and not v.strip())}
    body, errors = validate(EnrollmentCreate, cleaned)
    if body is None:
        return await _enroll_form(request, principal, db, form=data, errors=errors, status_code=422)
    try:
        enrollment, token = await service.enroll_patient(
            db,
            actor_for(request, principal),
            body,
            clinic_id=principal.clinic_id,
            settings=settings,
            now=clock.now(),
        )
    except AppError as exc:
        field = getattr(exc, "field", None) or ("email" if exc.code == "email_taken" else "form")
        return await _enroll_form(
            request,
            principal,
            db,
            form=data,
            errors={field: translate(exc.detail)},
            status_code=exc.status_code,
        )
    return render(
        request,
        "admin/invitation.html",
        {
            "title": _("Patient enrolled"),
            "who": body.full_name,
            "program_title": program_title(body.program),
            "invitation_url": service.invitation_url(settings, token),
            "days": settings.invitation_valid_days,
            "back": f"/admin/enrollments/{enrollment.id}",
        },
        status_code=201,
    )


@router.post("/admin/therapists")
async def therapist_submit(
    request: Request, principal: AdminUser, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    data = await form_data(request)
    body, errors = validate(TherapistCreate, data)
    if body is not None:
        try:
            user, token = await service.create_therapist(
                db,
                actor_for(request, principal),
                clinic_id=principal.clinic_id,
                full_name=body.full_name,
                email=body.email,
                settings=settings,
                now=clock.now(),
            )
        except AppError as exc:
            errors = {"email" if exc.code == "email_taken" else "form": translate(exc.detail)}
        else:
            return render(
                request,
                "admin/invitation.html",
                {
                    "title": _("Therapist account created"),
                    "who": user.full_name,
                    "program_title": None,
                    "invitation_url": service.invitation_url(settings, token),
                    "days": settings.invitation_valid_days,
                    "back": "/admin",
                },
                status_code=201,
            )
    therapists = await service.list_therapists(db, principal.clinic_id)
    return render(
        request,
        "admin/therapist_form.html",
        {"therapists": therapists, "form": data, "errors": errors},
        status_code=422,
    )


async def _enrollment_page(
    request: Request,
    principal: Any,
    db: DbSession,
    enrollment_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    enrollment = await service.read_enrollment(
        db, principal, actor_for(request, principal), enrollment_id
    )
    therapists = [t for t in await service.list_therapists(db, principal.clinic_id) if t.is_active]
    transitions = sorted(service.ALLOWED_TRANSITIONS.get(enrollment.status, set()))
    return render(
        request,
        "admin/enrollment.html",
        {
            "enrollment": enrollment,
            "therapists": therapists,
            "transitions": transitions,
            "errors": errors or {},
        },
        status_code=status_code,
        zone=reader_zone(principal),
    )


@router.get("/admin/enrollments/{enrollment_id}")
async def enrollment_page(
    enrollment_id: int, request: Request, principal: AdminUser, db: DbSession
) -> Response:
    return await _enrollment_page(request, principal, db, enrollment_id)


@router.post("/admin/enrollments/{enrollment_id}")
async def enrollment_update_submit(
    enrollment_id: int, request: Request, principal: AdminUser, db: DbSession, clock: ClockDep
) -> Response:
    """Reassign or change status from the enrollment page."""
    data = await form_data(request)
    enrollment = await service.get_enrollment(db, principal, enrollment_id)
    body, errors = validate(EnrollmentUpdate, {k: v for k, v in data.items() if v})
    if body is None:
        return await _enrollment_page(
            request, principal, db, enrollment_id, errors=errors, status_code=422
        )
    try:
        await service.update_enrollment(
            db, actor_for(request, principal), enrollment, body, now=clock.now()
        )
    except AppError as exc:
        return await _enrollment_page(
            request,
            principal,
            db,
            enrollment_id,
            errors={getattr(exc, "field", None) or "form": translate(exc.detail)},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/admin/enrollments/{enrollment_id}?saved=1", status_code=303)


@router.post("/admin/enrollments/{enrollment_id}/invitation")
async def resend_invitation_submit(
    enrollment_id: int,
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    enrollment = await service.get_enrollment(db, principal, enrollment_id)
    try:
        token = await service.resend_invitation(
            db, actor_for(request, principal), enrollment, settings=settings, now=clock.now()
        )
    except AppError as exc:
        return await _enrollment_page(
            request,
            principal,
            db,
            enrollment_id,
            errors={"form": translate(exc.detail)},
            status_code=exc.status_code,
        )
    view = await service.enrollment_view(db, enrollment.id)
    return render(
        request,
        "admin/invitation.html",
        {
            "title": _("New invitation link"),
            "who": view.patient.full_name,
            "program_title": view.program_title,
            "invitation_url": service.invitation_url(settings, token),
            "days": settings.invitation_valid_days,
            "back": f"/admin/enrollments/{enrollment.id}",
        },
    )


async def _settings_form(
    request: Request,
    clinic: Any,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/settings.html",
        {"clinic": clinic, "form": form, "errors": errors, "language_names": LANGUAGE_NAMES},
        status_code=status_code,
    )


def _retention_days(text: str) -> tuple[int | None, str | None]:
    """The form's retention period: empty keeps records, otherwise whole days within the limits."""
    text = text.strip()
    if not text:
        return None, None
    if text.isdigit() and RETENTION_DAYS_MIN <= int(text) <= RETENTION_DAYS_MAX:
        return int(text), None
    return None, _(
        "Enter a whole number of days from %(low)s to %(high)s, or leave it empty to keep records.",
        low=RETENTION_DAYS_MIN,
        high=RETENTION_DAYS_MAX,
    )


@router.get("/admin/settings")
async def settings_page(request: Request, principal: AdminUser, db: DbSession) -> Response:
    """The crisis contacts patients see on every page and after a self-harm answer."""
    clinic = await service.get_clinic(db, principal.clinic_id)
    form = {
        "emergency_number": clinic.emergency_number,
        "crisis_line_name": clinic.crisis_line_name,
        "crisis_line_number": clinic.crisis_line_number or "",
        "retention_days": "" if clinic.retention_days is None else str(clinic.retention_days),
        "language": clinic.language,
    }
    return await _settings_form(request, clinic, form=form, errors={})


@router.post("/admin/settings")
async def settings_submit(request: Request, principal: AdminUser, db: DbSession) -> Response:
    data = await form_data(request)
    values = {
        k: data.get(k, "").strip()
        for k in ("emergency_number", "crisis_line_name", "crisis_line_number")
    }
    required = {
        "emergency_number": _("Enter the emergency number, for example 112."),
        "crisis_line_name": _("Enter the name of the crisis line."),
    }
    retention, retention_error = _retention_days(data.get("retention_days", ""))
    language = data.get("language", "").strip()  # left out: unchanged
    body, errors = validate(
        ClinicCrisisUpdate,
        {k: v for k, v in values.items() if v or k not in required}
        | ({} if retention_error else {"retention_days": retention})
        | ({"language": language} if language else {}),
    )
    friendly = {
        "language": _("Choose one of the languages shown."),
        "number": _(
            "Use digits and spaces, with an optional + at the start, for example 09 2525 0111."
        ),
    }
    errors = {
        k: friendly["number"] if k.endswith("number") else friendly.get(k, v)
        for k, v in errors.items()
    }
    errors.update({k: message for k, message in required.items() if not values[k]})
    if retention_error:
        errors["retention_days"] = retention_error
    clinic = await service.get_clinic(db, principal.clinic_id)
    if body is None or errors:
        return await _settings_form(request, clinic, form=data, errors=errors, status_code=422)
    await service.update_crisis_contacts(db, actor_for(request, principal), clinic, body)
    return RedirectResponse("/admin/settings?saved=1", status_code=303)


@router.get("/therapist")
async def therapist_home(
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    status: str | None = None,
) -> Response:
    """The triaged work list: risk alerts, replies due, feedback, quiet patients, caseload."""
    return await render_therapist_home(request, principal, db, clock, status=status)


async def render_therapist_home(
    request: Request,
    principal: Principal,
    db: DbSession,
    clock: ClockDep,
    *,
    status: str | None = None,
    alert_errors: dict[int, str] | None = None,
    alert_form: dict[int, str] | None = None,
    alert_message: str | None = None,
    status_code: int = 200,
) -> Response:
    """The home page, also re-rendered by a failed alert acknowledgement to keep the note."""
    return await work_list_page(
        request,
        principal,
        db,
        now=clock.now(),
        status=status if status in STATUSES else None,
        extra={
            "alert_errors": alert_errors or {},
            "alert_form": alert_form or {},
            "alert_message": alert_message,
        },
        status_code=status_code,
    )


@router.get("/patient")
async def patient_home(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """The patient's dashboard: where they are, what is next, and how to get help now."""
    return await patient_dashboard(request, principal, db, now=clock.now())
