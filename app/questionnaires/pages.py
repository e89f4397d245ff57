"""HTML pages: answering questionnaires, the crisis page, score history, acknowledging alerts."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.dependencies import PatientUser, TherapistUser, actor_for
from app.accounts.models import User
from app.accounts.policy import Principal
from app.audit import service as audit
from app.clinics import service as clinics
from app.clinics.models import Enrollment
from app.clinics.pages import render_therapist_home
from app.common.errors import Conflict, NotFound
from app.common.routing import Router
from app.content.schemas import Instrument
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession
from app.questionnaires import service
from app.questionnaires.schemas import AlertAcknowledge
from app.templating import render
from app.web.forms import form_data, validate
from app.web.i18n import N_, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

# Words app.questionnaires.service gives for a score, shown here in the reader's language.
SCORE_WORDS = (
    N_("within the usual range"),
    N_("the lowest range"),
    N_("a lower range"),
    N_("the middle range"),
    N_("a higher range"),
    N_("the highest range"),
    N_("On this questionnaire, higher scores mean things are going better."),
    N_("On this questionnaire, lower scores mean fewer difficulties."),
)


def score_point_label(point: service.ScorePoint) -> str:
    """Start, End or Week n, in the reader's language (the JSON API keeps English labels)."""
    if point.occasion == "baseline":
        return _("Start")
    if point.occasion == "end":
        return _("End")
    return _("Week %(week)s", week=point.week)


async def _current_enrollment(db: DbSession, principal: Principal) -> Enrollment:
    enrollment = None
    if principal.patient_id is not None:
        enrollment = await clinics.current_enrollment_for_patient(db, principal.patient_id)
    if enrollment is None:
        raise NotFound(_("You are not enrolled in a program at the moment."))
    return enrollment


def parse_answers(
    instrument: Instrument, data: dict[str, str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Radio values from the form as integers, and a message per unanswered question."""
    answers: dict[str, int] = {}
    errors: dict[str, str] = {}
    for number, item in enumerate(instrument.items, start=1):
        raw = data.get(item.id, "").strip()
        allowed = {str(o.value): o.value for o in instrument.item_options(item)}
        if not raw:
            errors[item.id] = _(
                "Question %(number)s: please choose the answer closest to how things have been.",
                number=number,
            )
        elif raw not in allowed:
            errors[item.id] = _(
                "Question %(number)s: please choose one of the answers shown.", number=number
            )
        else:
            answers[item.id] = allowed[raw]
    return answers, errors


async def _form_page(
    request: Request,
    db: DbSession,
    principal: Principal,
    instrument: Instrument,
    due: service.DueQuestionnaire | None,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "patient/questionnaire.html",
        {
            "instrument": service.instrument_view(instrument),
            "due": due,
            "form": form or {},
            "errors": errors or {},
            "clinic": await clinics.get_clinic(db, principal.clinic_id),
        },
        status_code=status_code,
    )


@router.get("/patient/questionnaires")
async def questionnaires_page(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """What is due now, with a way to the score history."""
    enrollment = await _current_enrollment(db, principal)
    due = await service.due_questionnaires(db, enrollment, library_of(request), clock.now())
    await audit.record(
        db,
        actor_for(request, principal),
        action="read",
        resource_type="questionnaire_schedule",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return render(
        request,
        "patient/questionnaires.html",
        {"due": due, "clinic": await clinics.get_clinic(db, principal.clinic_id)},
    )


@router.get("/patient/questionnaires/{code}")
async def questionnaire_page(
    code: str, request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """All questions on one page, one radio group per question; works without JavaScript."""
    library = library_of(request)
    instrument = service.get_instrument(library, code)
    enrollment = await _current_enrollment(db, principal)
    due = {
        d.code: d for d in await service.due_questionnaires(db, enrollment, library, clock.now())
    }
    await audit.record(
        db,
        actor_for(request, principal),
        action="open",
        resource_type="questionnaire",
        resource_id=code,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return await _form_page(request, db, principal, instrument, due.get(code))


@router.post("/patient/questionnaires/{code}")
async def questionnaire_submit(
    code: str, request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """Score the answers; a fired urgent risk rule leads straight to the crisis page."""
    library = library_of(request)
    instrument = service.get_instrument(library, code)
    enrollment = await _current_enrollment(db, principal)
    data = await form_data(request)
    answers, errors = parse_answers(instrument, data)
    due = {
        d.code: d for d in await service.due_questionnaires(db, enrollment, library, clock.now())
    }
    if code not in due:
        return await _form_page(request, db, principal, instrument, None, status_code=409)
    if errors:
        return await _form_page(
            request, db, principal, instrument, due[code], form=data, errors=errors, status_code=422
        )
    try:
        await service.submit_questionnaire(
            db,
            actor_for(request, principal),
            enrollment,
            library,
            code=code,
            answers=dict(answers),
            now=clock.now(),
        )
    except service.AnswersInvalid as exc:
        errors = {e["field"].removeprefix("answers."): e["message"] for e in exc.errors}
        return await _form_page(
            request, db, principal, instrument, due[code], form=data, errors=errors, status_code=422
        )
    except Conflict:
        return await _form_page(request, db, principal, instrument, None, status_code=409)
    return RedirectResponse(f"/patient/questionnaires/{code}/done", status_code=303)


@router.get("/patient/questionnaires/{code}/done")
async def questionnaire_done(
    code: str, request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """After answering: the crisis page when an urgent rule fired, else a calm thank-you."""
    library = library_of(request)
    instrument = service.get_instrument(library, code)
    enrollment = await _current_enrollment(db, principal)
    found = await service.latest_response(db, enrollment.id, code)
    if found is None:
        return RedirectResponse(f"/patient/questionnaires/{code}", status_code=303)
    response, alerts = found
    await audit.record(
        db,
        actor_for(request, principal),
        action="read",
        resource_type="questionnaire_response",
        resource_id=response.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    clinic = await clinics.get_clinic(db, principal.clinic_id)
    therapist = await db.get(User, enrollment.therapist_id)
    context = {
        "clinic": clinic,
        "instrument": instrument,
        "response": response,
        "therapist_name": therapist.full_name if therapist else None,
        "alerts": alerts,
    }
    if any(alert.level == "urgent" for alert in alerts):
        return render(request, "patient/crisis.html", context)
    due = await service.due_questionnaires(db, enrollment, library, clock.now())
    return render(
        request,
        "patient/questionnaire_done.html",
        {
            **context,
            "band": translate(service.neutral_band(instrument, response.band)),
            "direction_hint": translate(service.direction_hint(instrument)),
            "due": due,
        },
    )


@router.get("/patient/scores")
async def scores_page(request: Request, principal: PatientUser, db: DbSession) -> Response:
    """Score history per questionnaire: a line chart with the same figures as a table."""
    library = library_of(request)
    enrollment = await _current_enrollment(db, principal)
    history = await service.score_history(db, enrollment.id)
    program = library.programs.get(enrollment.program)
    codes = list(program.instruments.all_codes) if program else []
    codes += [c for c in history if c not in codes]
    sections = []
    for code in codes:
        instrument = library.instruments.get(code)
        points = history.get(code, [])
        if instrument is None or not points:
            continue
        sections.append(
            {
                "code": code,
                "title": instrument.title,
                "max": instrument.scoring.max,
                "direction_hint": translate(service.direction_hint(instrument)),
                "chart": service.line_chart(instrument, points),
                "rows": [
                    {
                        "label": score_point_label(p),
                        "date": p.completed_at,
                        "total": p.total,
                        "band": translate(service.neutral_band(instrument, p.band)),
                    }
                    for p in points
                ],
            }
        )
    await audit.record(
        db,
        actor_for(request, principal),
        action="read",
        resource_type="questionnaire_response",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return render(
        request,
        "patient/scores.html",
        {"sections": sections, "clinic": await clinics.get_clinic(db, principal.clinic_id)},
    )


def _safe_next(value: str | None) -> str:
    """Only back to a therapist page on this site, never to another host."""
    if not value:
        return "/therapist"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/therapist") or "\\" in value:
        return "/therapist"
    return value


@router.post("/therapist/alerts/{alert_id}/acknowledge")
async def acknowledge_submit(
    alert_id: int,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    """Acknowledge from the home page (or a patient page), keeping a typed note on error."""
    data = await form_data(request)
    target = _safe_next(data.pop("next", None))
    body, errors = validate(AlertAcknowledge, {"note": data.get("note") or None})
    if body is None:
        return await render_therapist_home(
            request,
            principal,
            db,
            clock,
            alert_errors={alert_id: errors.get("note", next(iter(errors.values())))},
            alert_form={alert_id: data.get("note", "")},
            status_code=422,
        )
    try:
        await service.acknowledge_alert(
            db,
            principal,
            actor_for(request, principal),
            alert_id,
            note=body.note,
            cipher=cipher,
            now=clock.now(),
        )
    except Conflict as exc:
        return await render_therapist_home(
            request, principal, db, clock, alert_message=translate(exc.detail), status_code=409
        )
    return RedirectResponse(f"{target}#alerts", status_code=303)
