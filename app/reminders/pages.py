"""HTML pages: the patient's reminder choices, the admin's rules and report, notifications, tracked links."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import AdminUser, AnyUser, MaybeUser, PatientUser, actor_for
from app.accounts.policy import Principal
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment, Patient
from app.common.errors import AppError
from app.common.routing import Router
from app.deps import ClockDep, DbSession, SettingsDep
from app.reminders import service
from app.reminders.rules import RULE_LABELS, WEEKDAYS, zone
from app.reminders.schemas import (
    PROGRAM_PAIR,
    QUIET_PAIR,
    QUIET_SAME,
    PreferencesUpdate,
    RuleConfigUpdate,
)
from app.templating import reader_zone, render
from app.web.forms import validate
from app.web.i18n import N_, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

WEEKDAY_NAMES = dict(
    zip(
        WEEKDAYS,
        (
            N_("Monday"),
            N_("Tuesday"),
            N_("Wednesday"),
            N_("Thursday"),
            N_("Friday"),
            N_("Saturday"),
            N_("Sunday"),
        ),
        strict=True,
    )
)
# The schema's own wording for paired fields, so the form can show it translated.
PAIR_MESSAGES = (
    N_("give both the start and the end of the quiet hours, or neither"),
    N_("quiet hours must start and end at different times"),
    N_("give both the day and the time of your program time, or neither"),
)
PREFERENCE_SCALARS = (
    "phone",
    "quiet_hours_start",
    "quiet_hours_end",
    "paused_until",
    "program_weekday",
    "program_time",
)
# Errors about a pair of fields are shown beside the first of the pair.
PAIR_FIELDS = {
    QUIET_PAIR: "quiet_hours_start",
    QUIET_SAME: "quiet_hours_end",
    PROGRAM_PAIR: "program_time",
}
RULE_FLAGS = (
    "inactivity_enabled",
    "dropout_alert_enabled",
    "new_module_enabled",
    "questionnaire_enabled",
    "unread_message_enabled",
    "program_time_enabled",
    "staff_reminders_enabled",
)
RULE_NUMBERS = (
    "max_nudges_per_lapse",
    "new_module_delay_minutes",
    "questionnaire_after_hours",
    "unread_message_hours",
    "response_promise_hours",
    "response_warning_hours",
    "feedback_overdue_days",
)


def _field_errors(errors: dict[str, str]) -> dict[str, str]:
    """``channels.1`` -> ``channels``; cross-field messages go beside the field they concern."""
    out: dict[str, str] = {}
    for loc, message in errors.items():
        name = loc.split(".", 1)[0]
        if name == "form":
            name = next((f for text, f in PAIR_FIELDS.items() if text in message), "form")
        out.setdefault(name, message)
    return out


# Patient: reminder choices -----------------------------------------------------------------


async def _patient_enrollment(db: DbSession, principal: Principal) -> Enrollment | None:
    if principal.patient_id is None:
        return None
    return await clinics_service.current_enrollment_for_patient(db, principal.patient_id)


def _form_from(prefs: Any, now: datetime) -> dict[str, Any]:
    def hhmm(value: Any) -> str:
        return value.strftime("%H:%M") if value is not None else ""

    paused = ""
    if prefs.paused_until is not None and prefs.paused_until > now:
        paused = prefs.paused_until.astimezone(zone(prefs.timezone)).date().isoformat()
    return {
        "channels": list(prefs.channels),
        "weekdays": list(prefs.weekdays),
        "phone": prefs.phone or "",
        "quiet_hours_start": hhmm(prefs.quiet_hours_start),
        "quiet_hours_end": hhmm(prefs.quiet_hours_end),
        "paused_until": paused,
        "program_weekday": prefs.program_weekday or "",
        "program_time": hhmm(prefs.program_time),
    }


async def _preferences_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    settings: SettingsDep,
    now: datetime,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    enrollment = await _patient_enrollment(db, principal)
    context: dict[str, Any] = {
        "enrollment": enrollment,
        "weekday_names": WEEKDAY_NAMES,
        "errors": errors or {},
        "prefs": None,
        "form": form or {},
        "reminders": [],
        "rule_labels": {k.value: v for k, v in RULE_LABELS.items()},
    }
    if enrollment is not None:
        actor = actor_for(request, principal)
        prefs = await service.read_preferences(db, actor, enrollment, settings=settings)
        context["prefs"] = prefs
        context["form"] = form if form is not None else _form_from(prefs, now)
        context["reminders"] = await service.list_reminders(
            db, actor, enrollment, patient_view=True, limit=10, audited=False
        )
    prefs = context["prefs"]
    zone = reader_zone(principal, patient_timezone=prefs.timezone if prefs is not None else None)
    return render(request, "patient/reminders.html", context, status_code=status_code, zone=zone)


@router.get("/patient/reminders")
async def preferences_page(
    request: Request, principal: PatientUser, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    """How and when the patient is reminded, and a way to pause."""
    return await _preferences_page(request, principal, db, settings, clock.now())


def _parse_preferences(raw: dict[str, Any], timezone: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Form values -> API payload. Empty fields mean "none"; the pause date is a local day."""
    payload: dict[str, Any] = {
        "channels": ["in_app", *raw["channels"]],
        "weekdays": raw["weekdays"],
    }
    errors: dict[str, str] = {}
    for name in (
        "phone",
        "quiet_hours_start",
        "quiet_hours_end",
        "program_weekday",
        "program_time",
    ):
        payload[name] = raw[name] or None
    # Checked here as well as in the schema, so they show up together with field errors.
    start, end = raw["quiet_hours_start"], raw["quiet_hours_end"]
    if bool(start) != bool(end):
        errors["quiet_hours_end" if start else "quiet_hours_start"] = translate(QUIET_PAIR)
    elif start and start == end:
        errors["quiet_hours_end"] = translate(QUIET_SAME)
    if bool(raw["program_weekday"]) != bool(raw["program_time"]):
        errors["program_time" if raw["program_weekday"] else "program_weekday"] = translate(
            PROGRAM_PAIR
        )
    if raw["paused_until"]:
        try:
            day = date.fromisoformat(raw["paused_until"])
        except ValueError:
            errors["paused_until"] = _("Enter a date such as 2026-04-30.")
        else:
            payload["paused_until"] = service.pause_until_day(day, timezone)
    return payload, errors


@router.post("/patient/reminders")
async def preferences_submit(
    request: Request,
    principal: PatientUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Save the patient's choices; on a mistake show the form again exactly as typed."""
    form = await request.form()
    raw: dict[str, Any] = {
        "channels": [v for v in form.getlist("channels") if isinstance(v, str) and v != "in_app"],
        "weekdays": [v for v in form.getlist("weekdays") if isinstance(v, str)],
    }
    for name in PREFERENCE_SCALARS:
        value = form.get(name)
        raw[name] = value.strip() if isinstance(value, str) else ""
    now = clock.now()
    enrollment = await _patient_enrollment(db, principal)
    if enrollment is None:
        return await _preferences_page(request, principal, db, settings, now, status_code=404)
    patient = await db.get(Patient, enrollment.patient_id)
    payload, errors = _parse_preferences(raw, patient.timezone if patient else "UTC")
    body, schema_errors = validate(PreferencesUpdate, payload)
    found = set(errors.values())
    errors = {
        **{k: v for k, v in _field_errors(schema_errors).items() if v not in found},
        **errors,
    }
    if body is not None and not errors:
        try:
            await service.update_preferences(
                db,
                actor_for(request, principal),
                enrollment,
                body,
                settings=settings,
                now=now,
            )
        except AppError as exc:
            errors = {getattr(exc, "field", None) or "form": translate(exc.detail)}
        else:
            return RedirectResponse("/patient/reminders?saved=1", status_code=303)
    return await _preferences_page(
        request, principal, db, settings, now, form=raw, errors=errors, status_code=422
    )


# Admin: rules and report -------------------------------------------------------------------


def _rules_form(rules: Any) -> dict[str, Any]:
    form: dict[str, Any] = {name: getattr(rules, name) for name in RULE_FLAGS}
    form.update({name: str(getattr(rules, name)) for name in RULE_NUMBERS})
    for i, value in enumerate(rules.inactivity_days, start=1):
        form[f"inactivity_days_{i}"] = str(value)
    return form


async def _admin_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    settings: SettingsDep,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rules = await service.read_rules(db, principal.clinic_id, settings=settings)
    report = await service.report(db, actor_for(request, principal), principal.clinic_id)
    return render(
        request,
        "admin/reminders.html",
        {
            "rules": rules,
            "report": report,
            "form": form if form is not None else _rules_form(rules),
            "errors": errors or {},
        },
        status_code=status_code,
        zone=reader_zone(principal),
    )


@router.get("/admin/reminders")
async def admin_reminders_page(
    request: Request, principal: AdminUser, db: DbSession, settings: SettingsDep
) -> Response:
    """The clinic's reminder rules and what was planned, sent, failed and opened."""
    return await _admin_page(request, principal, db, settings)


@router.post("/admin/reminders")
async def admin_reminders_submit(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Save the clinic's rules; on a mistake show the form again as typed."""
    data = await request.form()
    raw: dict[str, Any] = {name: data.get(name) is not None for name in RULE_FLAGS}
    for name in (*RULE_NUMBERS, "inactivity_days_1", "inactivity_days_2", "inactivity_days_3"):
        value = data.get(name)
        raw[name] = value.strip() if isinstance(value, str) else ""
    payload = {
        **{name: raw[name] for name in (*RULE_FLAGS, *RULE_NUMBERS)},
        "inactivity_days": [raw[f"inactivity_days_{i}"] for i in (1, 2, 3)],
    }
    body, schema_errors = validate(RuleConfigUpdate, payload)
    errors = _field_errors(schema_errors)
    if "form" in errors and "reply reminder" in errors["form"]:
        errors["response_warning_hours"] = errors.pop("form")
    if body is None:
        return await _admin_page(
            request, principal, db, settings, form=raw, errors=errors, status_code=422
        )
    await service.update_rules(
        db, actor_for(request, principal), principal.clinic_id, body, now=clock.now()
    )
    return RedirectResponse("/admin/reminders?saved=1", status_code=303)


# Notifications and tracked links -----------------------------------------------------------


@router.get("/notifications")
async def notifications_page(request: Request, principal: AnyUser, db: DbSession) -> Response:
    """Everything behind the bell, newest first."""
    notifications = await service.list_notifications(db, principal.user_id)
    return render(
        request,
        "reminders/notifications.html",
        {"notifications": notifications},
        zone=reader_zone(principal),
    )


@router.post("/notifications/{notification_id}/open")
async def notification_open(
    notification_id: int, request: Request, principal: AnyUser, db: DbSession, clock: ClockDep
) -> Response:
    """Mark it read (and its reminder opened), then go where it points."""
    notification = await service.mark_read(
        db, actor_for(request, principal), principal.user_id, notification_id, now=clock.now()
    )
    target = notification.link if notification.link.startswith("/") else "/"
    return RedirectResponse(target, status_code=303)


@router.post("/notifications/read-all")
async def notifications_read_all(principal: AnyUser, db: DbSession, clock: ClockDep) -> Response:
    await service.mark_all_read(db, principal.user_id, now=clock.now())
    return RedirectResponse("/notifications", status_code=303)


@router.get("/r/{token}")
async def tracked_link(
    token: str,
    request: Request,
    principal: MaybeUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """A reminder's link: record that it was opened, then go on (the page asks for login if needed)."""
    target = await service.open_tracked_link(
        db, actor_for(request, principal), token, settings=settings, now=clock.now()
    )
    return RedirectResponse(target, status_code=303)
