"""HTML pages: the therapist's work list and threads, the patient's messages, snippets,
handover and the clinic's message statistics.

Everything works without JavaScript. Inserting a snippet is a submit button inside the
composer form: the page comes back with the snippet added to what was already typed,
ready to edit, and nothing is sent until "Send" is pressed. Message bodies are plain
text, rendered through the ``plaintext`` filter (escape first, then line breaks).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import ValidationError

from app.accounts.dependencies import AdminUser, PatientUser, TherapistUser, actor_for
from app.accounts.policy import Principal
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common import idempotency
from app.common.clock import zone_named
from app.common.errors import AppError, NotFound
from app.common.routing import Router
from app.content.service import library_of
from app.deps import ClockDep, DbSession, SettingsDep
from app.inbox import context as context_service
from app.inbox import handover, service, snippets, triage
from app.inbox.models import FUNCTIONS
from app.inbox.schemas import MAX_ID, AbsenceCreate, MessageCreate, SnippetUpdate, SnippetWrite
from app.templating import render, templates
from app.web.forms import form_data, validate
from app.web.i18n import gettext as _
from app.web.i18n import ngettext, translate

router = Router(include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
STATUSES = ("invited", "active", "paused", "completed", "dropped", "closed")


def plaintext(value: str | None) -> Markup:
    """A message body as HTML: every character escaped, then line breaks kept as ``<br>``."""
    if not value:
        return Markup("")
    lines = escape(value.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    return Markup("<br>\n").join(lines)


templates.env.filters["plaintext"] = plaintext


def time_left(seconds: int) -> str:
    """Plain words, in the reader's language, for the time left until a reply is due."""
    span = abs(seconds)
    hours = span // 3600
    if hours < 1:
        amount = _("less than an hour")
    elif hours < 48:
        amount = _("%(hours)s h", hours=hours)
    else:
        amount = ngettext("%(num)s day", "%(num)s days", hours // 24)
    if seconds < 0:
        return _("Overdue by %(time)s", time=amount)
    return _("%(time)s left", time=amount[:1].upper() + amount[1:])


templates.env.filters["time_left"] = time_left


def _seen(request: Request, count: int) -> None:
    """The nav badge was counted before this page marked messages read; keep it honest."""
    current = getattr(request.state, "unread_messages", 0)
    request.state.unread_messages = max(0, current - count)


def _int(value: str | None) -> int | None:
    """A positive id from a query string or form field; anything else is None."""
    if not value or not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


async def _therapist_enrollment(
    enrollment_id: Id, principal: TherapistUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


TherapistEnrollment = Annotated[Enrollment, Depends(_therapist_enrollment)]


# Therapist: the work list (the therapist home) ------------------------------------------------


async def work_list_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    *,
    now: datetime,
    status: str | None = None,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """Alerts first, then replies due, feedback waiting, quiet patients, then the caseload."""
    result = await triage.work_list(
        db,
        principal,
        actor_for(request, principal),
        library=library_of(request),
        cipher=request.app.state.cipher,
        settings=request.app.state.settings,
        now=now,
    )
    rows = [r for r in result.caseload if not status or r.status == status]
    rows.sort(
        key=lambda r: (
            r.status not in ("active", "invited", "paused"),
            -(r.last_activity_at.timestamp() if r.last_activity_at else 0),
            r.enrollment_id,
        )
    )
    by_kind: dict[str, list[Any]] = {kind: [] for kind in ("alert", "reply", "feedback", "quiet")}
    for item in result.items:
        by_kind[item.kind].append(item)
    return render(
        request,
        "therapist/home.html",
        {
            "risk_alerts": [item.alert for item in by_kind["alert"]],
            "replies": by_kind["reply"],
            "feedback": by_kind["feedback"],
            "quiet": by_kind["quiet"],
            "enrollments": rows,
            "total": len(result.caseload),
            "status": status or "",
            "statuses": STATUSES,
            "promise_days": request.app.state.settings.response_promise_working_days,
            "quiet_days": request.app.state.settings.inbox_quiet_after_days,
            "contact_days": request.app.state.settings.inbox_contact_within_days,
            **(extra or {}),
        },
        status_code=status_code,
        zone=result.zone,
    )


# Therapist: a thread -----------------------------------------------------------------------------


def _composer_defaults(anchor: str | None = None) -> dict[str, Any]:
    return {"body": "", "anchor": anchor or "", "key": secrets.token_urlsafe(16)}


async def _thread_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    enrollment: Enrollment,
    *,
    now: datetime,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    before: int | None = None,
    status_code: int = 200,
) -> Response:
    library = library_of(request)
    cipher = request.app.state.cipher
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    thread = await service.read_thread(
        db,
        principal,
        actor_for(request, principal),
        enrollment,
        library=library,
        cipher=cipher,
        now=now,
        before=before,
        mark_read=True,
    )
    _seen(request, len(thread.new_ids))
    patient = await context_service.patient_context(
        db, enrollment, library=library, cipher=cipher, now=now
    )
    cover = await handover.cover_now(db, enrollment.therapist_id, now=now)
    values = patient.placeholders(principal.full_name)
    snippet_list = await snippets.list_snippets(db, principal, values=values)
    form = form or _composer_defaults(request.query_params.get("anchor"))
    anchored = context_service.answers_for(library, patient, form.get("anchor"))
    settings = request.app.state.settings
    return render(
        request,
        "inbox/thread.html",
        {
            "enrollment_id": enrollment.id,
            "enrollment": patient.enrollment,
            "patient": patient,
            "thread": thread.page,
            "new_ids": thread.new_ids,
            "cover": cover,
            "snippets": snippet_list,
            "functions": FUNCTIONS,
            "function_labels": snippets.FUNCTION_LABELS,
            "function_hints": snippets.FUNCTION_HINTS,
            "form": form,
            "errors": errors or {},
            "notice": notice,
            "anchored": anchored,
            "max_length": settings.message_max_length,
            "me": principal.user_id,
        },
        status_code=status_code,
        zone=zone_named(clinic.timezone),
    )


@router.get("/therapist/patients/{enrollment_id}/messages")
async def thread_page(
    enrollment: TherapistEnrollment,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    snippet: str | None = None,
    anchor: str | None = None,
    before: str | None = None,
) -> Response:
    """The conversation with the patient's context beside the composer.

    ``?anchor=exercise-12`` starts feedback on that exercise; ``?snippet=3`` fills the
    composer with that snippet for this patient (nothing is sent).
    """
    form = _composer_defaults(anchor)
    notice = None
    snippet_id = _int(snippet)
    if snippet_id is not None:
        form, notice = await _insert_snippet(
            request, principal, db, enrollment, form, snippet_id, now=clock.now()
        )
    return await _thread_page(
        request,
        principal,
        db,
        enrollment,
        now=clock.now(),
        form=form,
        notice=notice,
        before=_int(before),
    )


async def _insert_snippet(
    request: Request,
    principal: Principal,
    db: DbSession,
    enrollment: Enrollment,
    form: dict[str, Any],
    snippet_id: int,
    *,
    now: datetime,
) -> tuple[dict[str, Any], str]:
    """Add the snippet, filled in for this patient, to whatever is already in the composer."""
    snippet = await snippets.get_visible(db, principal, snippet_id)
    values = await context_service.placeholder_values(
        db, enrollment, library=library_of(request), therapist_name=principal.full_name, now=now
    )
    text = snippets.render(snippet.body, values.as_dict())
    typed = str(form.get("body", "")).rstrip()
    form = {**form, "body": f"{typed}\n\n{text}" if typed else text}
    form[f"tag_{snippet.function}"] = "on"
    return (
        form,
        _(
            "“%(title)s” is in the message box. Edit it as you like; nothing is sent until "
            "you press Send.",
            title=snippet.title,
        ),
    )


def _message_body(form: dict[str, str]) -> dict[str, Any]:
    anchor = form.get("anchor", "")
    kind, _sep, raw_id = anchor.partition("-")
    body: dict[str, Any] = {
        "body": form.get("body", ""),
        "functions": [name for name in FUNCTIONS if form.get(f"tag_{name}")],
    }
    anchor_id = _int(raw_id)
    if kind == "exercise" and anchor_id:
        body["exercise_response_id"] = anchor_id
    elif kind == "questionnaire" and anchor_id:
        body["questionnaire_response_id"] = anchor_id
    return body


async def _send_from_form(
    request: Request,
    principal: Principal,
    db: DbSession,
    enrollment: Enrollment,
    form: dict[str, str],
    *,
    now: datetime,
) -> int | dict[str, str] | None:
    """Send what the form holds: the new message's id (None for a repeated submission), or
    the field errors to show beside the kept text.

    The form carries an idempotency key, so a double click or a resubmitted page sends once.
    """
    settings = request.app.state.settings
    data = _message_body(form)
    try:
        service.clean_body(data["body"], max_length=settings.message_max_length)
        body = MessageCreate.model_validate(data)
    except AppError as exc:
        return {"body": translate(exc.detail)}
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "anchor"
        return {
            name if name == "functions" else "anchor": translate(
                first["msg"].removeprefix("Value error, ")
            )
        }
    key = (form.get("idempotency_key") or "")[:200] or None
    fp = idempotency.fingerprint("POST", request.url.path, body.model_dump())
    try:
        if await idempotency.replay(db, user_id=principal.user_id, key=key, request_fingerprint=fp):
            return None
        sent = await service.send_message(
            db,
            principal,
            actor_for(request, principal),
            enrollment,
            body,
            library=library_of(request),
            cipher=request.app.state.cipher,
            settings=settings,
            now=now,
        )
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return {getattr(exc, "field", None) or "body": translate(exc.detail)}
    await idempotency.remember(
        db,
        user_id=principal.user_id,
        key=key,
        request_fingerprint=fp,
        status_code=201,
        body=service.receipt(sent),
    )
    return sent.id


@router.post("/therapist/patients/{enrollment_id}/messages")
async def thread_submit(
    enrollment: TherapistEnrollment,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    """Send, or insert a snippet into the composer (``action=insert:<id>``) without sending."""
    form = await form_data(request)
    action = form.get("action", "send")
    kept: dict[str, Any] = {
        "body": form.get("body", ""),
        "anchor": form.get("anchor", ""),
        "key": form.get("idempotency_key") or secrets.token_urlsafe(16),
        **{f"tag_{n}": "on" for n in FUNCTIONS if form.get(f"tag_{n}")},
    }
    now = clock.now()
    if action.startswith("insert:"):
        snippet_id = _int(action.removeprefix("insert:"))
        if snippet_id is None:
            raise NotFound(_("Snippet not found."))
        kept, notice = await _insert_snippet(
            request, principal, db, enrollment, kept, snippet_id, now=now
        )
        return await _thread_page(
            request, principal, db, enrollment, now=now, form=kept, notice=notice
        )
    outcome = await _send_from_form(request, principal, db, enrollment, form, now=now)
    if isinstance(outcome, dict):
        return await _thread_page(
            request, principal, db, enrollment, now=now, form=kept, errors=outcome, status_code=422
        )
    target = f"/therapist/patients/{enrollment.id}/messages?sent=1"
    if outcome is not None:
        target += f"#m-{outcome}"
    return RedirectResponse(target, status_code=303)


# Patient: messages -------------------------------------------------------------------------------


async def _patient_enrollment(db: DbSession, principal: Principal) -> Enrollment:
    enrollment = None
    if principal.patient_id is not None:
        enrollment = await clinics_service.current_enrollment_for_patient(db, principal.patient_id)
    if enrollment is None:
        raise NotFound(_("You are not enrolled in a program at the moment."))
    return enrollment


async def _patient_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    enrollment: Enrollment,
    *,
    now: datetime,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    before: int | None = None,
    status_code: int = 200,
) -> Response:
    thread = await service.read_thread(
        db,
        principal,
        actor_for(request, principal),
        enrollment,
        library=library_of(request),
        cipher=request.app.state.cipher,
        now=now,
        before=before,
        mark_read=True,
    )
    _seen(request, len(thread.new_ids))
    view = await clinics_service.enrollment_view(db, enrollment.id)
    cover = await handover.cover_now(db, enrollment.therapist_id, now=now)
    settings = request.app.state.settings
    return render(
        request,
        "inbox/patient_messages.html",
        {
            "enrollment": view,
            "thread": thread.page,
            "new_ids": thread.new_ids,
            "cover": cover,
            "form": form or _composer_defaults(),
            "errors": errors or {},
            "max_length": settings.message_max_length,
            "promise_days": settings.response_promise_working_days,
            "ended": enrollment.status in service.ENDED,
            "me": principal.user_id,
            "sent": request.query_params.get("sent"),
        },
        status_code=status_code,
        zone=zone_named(view.patient.timezone),
    )


@router.get("/patient/messages")
async def patient_messages(
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    before: str | None = None,
) -> Response:
    """The whole conversation with the therapist; opening it is reading it."""
    enrollment = await _patient_enrollment(db, principal)
    return await _patient_page(
        request, principal, db, enrollment, now=clock.now(), before=_int(before)
    )


@router.post("/patient/messages")
async def patient_send(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """Send a message to the therapist; on a problem the text comes back as typed."""
    enrollment = await _patient_enrollment(db, principal)
    form = await form_data(request)
    for name in FUNCTIONS:
        form.pop(f"tag_{name}", None)
    form.pop("anchor", None)
    now = clock.now()
    outcome = await _send_from_form(request, principal, db, enrollment, form, now=now)
    if isinstance(outcome, dict):
        kept = {
            "body": form.get("body", ""),
            "key": form.get("idempotency_key") or secrets.token_urlsafe(16),
        }
        return await _patient_page(
            request, principal, db, enrollment, now=now, form=kept, errors=outcome, status_code=422
        )
    target = "/patient/messages?sent=1"
    if outcome is not None:
        target += f"#m-{outcome}"
    return RedirectResponse(target, status_code=303)


# Therapist: snippets ------------------------------------------------------------------------------


async def _snippets_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    edit_id: int | None = None,
    status_code: int = 200,
) -> Response:
    listed = await snippets.list_snippets(db, principal)
    return render(
        request,
        "inbox/snippets.html",
        {
            "snippets": listed,
            "functions": FUNCTIONS,
            "function_labels": snippets.FUNCTION_LABELS,
            "function_hints": snippets.FUNCTION_HINTS,
            "placeholders": snippets.PLACEHOLDERS,
            "form": form or {"function": "alliance"},
            "errors": errors or {},
            "edit_id": edit_id,
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
    )


@router.get("/therapist/snippets")
async def snippets_page(request: Request, principal: TherapistUser, db: DbSession) -> Response:
    """Small gestures to reuse: your own, the clinic's and the built-in ones."""
    return await _snippets_page(request, principal, db)


def _snippet_fields(form: dict[str, str]) -> dict[str, Any]:
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "function": form.get("function", ""),
        "shared": bool(form.get("shared")),
    }


@router.post("/therapist/snippets")
async def snippet_create(
    request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    form = await form_data(request)
    body, errors = validate(SnippetWrite, _snippet_fields(form))
    if body is not None:
        try:
            await snippets.create_snippet(
                db, principal, actor_for(request, principal), body, now=clock.now()
            )
        except AppError as exc:
            errors = {getattr(exc, "field", None) or "form": translate(exc.detail)}
        else:
            return RedirectResponse("/therapist/snippets?done=saved", status_code=303)
    return await _snippets_page(request, principal, db, form=form, errors=errors, status_code=422)


@router.post("/therapist/snippets/{snippet_id}")
async def snippet_update(
    snippet_id: Id, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    form = await form_data(request)
    body, errors = validate(SnippetUpdate, _snippet_fields(form))
    if body is not None:
        try:
            await snippets.update_snippet(
                db, principal, actor_for(request, principal), snippet_id, body, now=clock.now()
            )
        except AppError as exc:
            if exc.status_code == 404:
                raise
            errors = {getattr(exc, "field", None) or "form": translate(exc.detail)}
        else:
            return RedirectResponse("/therapist/snippets?done=saved", status_code=303)
    await snippets.get_visible(db, principal, snippet_id)
    return await _snippets_page(
        request, principal, db, form=form, errors=errors, edit_id=snippet_id, status_code=422
    )


@router.post("/therapist/snippets/{snippet_id}/delete")
async def snippet_delete(
    snippet_id: Id, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    await snippets.delete_snippet(
        db, principal, actor_for(request, principal), snippet_id, now=clock.now()
    )
    return RedirectResponse("/therapist/snippets?done=deleted", status_code=303)


# Therapist: handover ------------------------------------------------------------------------------


async def _handover_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    *,
    now: datetime,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    tz = zone_named(clinic.timezone)
    today = now.astimezone(tz).date()
    return render(
        request,
        "inbox/handover.html",
        {
            "absences": await handover.list_absences(db, principal, now=now),
            "colleagues": await handover.colleagues(db, principal),
            "form": form
            or {"first_day": today.isoformat(), "back_on": (today + timedelta(days=7)).isoformat()},
            "errors": errors or {},
            "me": principal.user_id,
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
        zone=tz,
    )


@router.get("/therapist/away")
async def handover_page(
    request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    """Set an absence and who covers it; see whom you are covering for."""
    return await _handover_page(request, principal, db, now=clock.now())


def _day(value: str | None) -> date | None:
    """A date typed into a date field (YYYY-MM-DD) in this century, or None."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and 2000 <= day.year <= 2100 else None


@router.post("/therapist/away")
async def handover_submit(
    request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    form = await form_data(request)
    now = clock.now()
    errors: dict[str, str] = {}
    first_day, back_on = _day(form.get("first_day")), _day(form.get("back_on"))
    if first_day is None:
        errors["first_day"] = _("Enter the first day you are away, for example 2026-03-09.")
    if back_on is None:
        errors["back_on"] = _("Enter the day you are back, for example 2026-03-16.")
    covering = _int(form.get("covering_therapist_id"))
    if covering is None:
        errors["covering_therapist_id"] = _("Choose the colleague who covers for you.")
    if not errors and first_day is not None and back_on is not None and covering is not None:
        clinic = await clinics_service.get_clinic(db, principal.clinic_id)
        tz = zone_named(clinic.timezone)
        data = AbsenceCreate(
            starts_at=datetime.combine(first_day, time(0), tzinfo=tz),
            ends_at=datetime.combine(back_on, time(0), tzinfo=tz),
            covering_therapist_id=covering,
        )
        try:
            await handover.set_absence(db, principal, actor_for(request, principal), data, now=now)
        except AppError as exc:
            field = getattr(exc, "field", None)
            field = {"starts_at": "first_day", "ends_at": "back_on"}.get(field or "", field)
            errors = {field or "form": translate(exc.detail)}
        else:
            return RedirectResponse("/therapist/away?done=set", status_code=303)
    return await _handover_page(
        request, principal, db, now=now, form=form, errors=errors, status_code=422
    )


@router.post("/therapist/away/{absence_id}/end")
async def handover_end(
    absence_id: Id, request: Request, principal: TherapistUser, db: DbSession, clock: ClockDep
) -> Response:
    now = clock.now()
    try:
        await handover.end_absence(
            db, principal, actor_for(request, principal), absence_id, now=now
        )
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await _handover_page(
            request,
            principal,
            db,
            now=now,
            errors={"form": translate(exc.detail)},
            status_code=exc.status_code,
        )
    return RedirectResponse("/therapist/away?done=ended", status_code=303)


# Admin: message statistics ------------------------------------------------------------------------


@router.get("/admin/messages")
async def admin_stats(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    days: str | None = None,
) -> Response:
    """How many messages, how fast the replies: counts and times only, never the words."""
    period = _int(days) or 30
    period = period if period in (7, 30, 90, 365) else 30
    stats = await service.message_stats(
        db,
        principal,
        actor_for(request, principal),
        settings=settings,
        days=period,
        now=clock.now(),
    )
    return render(
        request,
        "inbox/admin_stats.html",
        {
            "stats": stats,
            "days": period,
            "function_labels": snippets.FUNCTION_LABELS,
            "functions": FUNCTIONS,
        },
    )
