"""HTML pages: the therapist's caseload, a patient's timeline, the clinic report."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.accounts.dependencies import AdminUser, TherapistUser, actor_for
from app.accounts.policy import Principal
from app.adherence import charts, reports
from app.adherence.status import STATUS_LABELS, STATUS_ORDER, save_thresholds, thresholds_for
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common.errors import AppError
from app.common.routing import Router
from app.config import ROOT_DIR
from app.content.service import library_of
from app.deps import ClockDep, DbSession, SettingsDep
from app.programs.catalogue import PROGRAMS, program_title
from app.questionnaires import service as questionnaires
from app.questionnaires.pages import score_point_label
from app.templating import reader_zone, render
from app.web.forms import form_data, validate
from app.web.i18n import N_, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

DICTIONARY_PATH = ROOT_DIR / "docs" / "data-dictionary.md"


async def _therapist_enrollment(
    enrollment_id: int, principal: TherapistUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


TherapistEnrollment = Annotated[Enrollment, Depends(_therapist_enrollment)]


@router.get("/therapist/caseload")
async def caseload_page(
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    status: str | None = None,
    ended: str | None = None,
) -> Response:
    """Every patient with status, modules done, days since activity, score trend and the
    last time they heard from their therapist; the most urgent first."""
    library = library_of(request)
    chosen = status if status in STATUS_LABELS else None
    result = await reports.caseload(
        db,
        principal,
        actor_for(request, principal),
        settings=settings,
        library=library,
        now=clock.now(),
        status=chosen,
        include_ended=ended == "1",
    )
    rows = []
    for row in result.rows:
        spec = library.instruments.get(row.instrument) if row.instrument else None
        trend = None
        if spec is not None:
            trend = charts.sparkline(
                row.scores,
                low=spec.scoring.min,
                high=spec.scoring.max,
                label=_("%(title)s totals, oldest first", title=spec.title),
                chart_id=f"spark-{row.enrollment_id}",
            )
        rows.append({"row": row, "trend": trend, "instrument_title": spec.title if spec else None})
    return render(
        request,
        "adherence/caseload.html",
        {
            "rows": rows,
            "counts": result.counts,
            "labels": STATUS_LABELS,
            "order": [s.value for s in STATUS_ORDER],
            "status": chosen or "",
            "ended": ended == "1",
            "today": clock.now(),
        },
    )


EVENT_TEXT = {
    "login": N_("Logged in"),
    "invitation_accepted": N_("Accepted the invitation and started"),
    "module_opened": N_("Opened a module"),
    "page_viewed": N_("Read a page"),
    "exercise_saved": N_("Saved an exercise draft"),
    "exercise_submitted": N_("Submitted an exercise"),
    "module_completed": N_("Completed a module"),
    "questionnaire_completed": N_("Completed a questionnaire"),
    "message_sent": N_("Sent a message"),
    "message_read": N_("Read a message"),
    "feedback_read": N_("Read feedback"),
    "reminder_sent": N_("Reminder sent"),
    "reminder_opened": N_("Opened a reminder"),
    "alert_raised": N_("Risk alert raised"),
    "status_changed": N_("Treatment status changed"),
}


def _words(value: object) -> str:
    """A stored code ("emotion_regulation") as words, in the reader's language when known."""
    return translate(str(value).replace("_", " "))


def _describe(event: Any, library: Any, program: str) -> str:
    """Plain words for one event, naming modules and questionnaires by their titles."""
    detail = event.detail or {}
    known = EVENT_TEXT.get(event.kind)
    text: str = _(known) if known else str(event.kind).replace("_", " ").capitalize()
    if event.kind == "message_sent":
        therapist = event.actor_role == "therapist"
        if detail.get("anchored"):
            text = (
                _("Therapist sent a message (feedback)")
                if therapist
                else _("Patient sent a message (feedback)")
            )
        else:
            text = _("Therapist sent a message") if therapist else _("Patient sent a message")
        if detail.get("functions"):
            text += ": " + ", ".join(_words(f) for f in detail["functions"])
        return text
    ref = detail.get("module")
    if isinstance(ref, str):
        source, _sep, key = ref.rpartition(":")
        spec = library.programs.get(source or program)
        module = spec.modules.get(key) if spec is not None else None
        text += f": {module.title if module else ref}"
        if isinstance(detail.get("page"), int):
            text += ", " + _("page %(page)s", page=detail["page"])
    instrument = detail.get("instrument")
    if isinstance(instrument, str):
        spec = library.instruments.get(instrument)
        text += f": {spec.title if spec else instrument}"
    if event.kind == "status_changed" and detail.get("to"):
        text = _("%(event)s to %(status)s", event=text, status=_words(detail["to"]))
    if event.kind in ("reminder_sent", "reminder_opened") and detail.get("rule"):
        text += f" ({_words(detail['rule'])}, {_words(detail.get('channel', ''))})"
    if event.kind == "alert_raised" and detail.get("level"):
        text += f" ({_words(detail['level'])}, {_words(detail.get('source', ''))})"
    return text


@router.get("/therapist/patients/{enrollment_id}/timeline")
async def timeline_page(
    enrollment: TherapistEnrollment,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    before: str | None = None,
) -> Response:
    """Everything that happened, newest first, beside the symptom scores with their bands."""
    library = library_of(request)
    now = clock.now()
    actor = actor_for(request, principal)
    view = await clinics_service.enrollment_view(db, enrollment.id)
    adherence = await reports.enrollment_adherence(
        db, actor, enrollment, settings=settings, library=library, now=now
    )
    try:
        cursor = int(before) if before else None
        events, next_cursor = await reports.timeline_events(db, enrollment.id, before=cursor)
    except (ValueError, AppError):
        events, next_cursor = await reports.timeline_events(db, enrollment.id)
    history = await questionnaires.score_history(db, enrollment.id)
    score_charts = []
    for code, points in history.items():
        spec = library.instruments.get(code)
        if spec is None:
            continue
        chart_points = [charts.ScorePoint(score_point_label(p), p.total) for p in points]
        score_charts.append(
            {
                "title": spec.title,
                "bands": spec.bands,
                "points": points,
                "svg": charts.score_chart(spec, chart_points, chart_id=f"scores-{code}"),
            }
        )
    zone = reader_zone(principal)
    days: list[dict[str, Any]] = []
    for event in events:
        day = event.at.astimezone(zone).date()
        if not days or days[-1]["day"] != day:
            days.append({"day": day, "events": []})
        days[-1]["events"].append(
            {
                "at": event.at,
                "text": _describe(event, library, enrollment.program),
                "kind": event.kind,
                "role": event.actor_role,
            }
        )
    return render(
        request,
        "adherence/timeline.html",
        {
            "enrollment": view,
            "adherence": adherence,
            "days": days,
            "next_cursor": next_cursor,
            "score_charts": score_charts,
            "program_title": program_title(enrollment.program),
        },
        zone=zone,
    )


class ReportQuery(BaseModel):
    """The report page's filter form; the same rules as the API (422 on nonsense)."""

    model_config = ConfigDict(extra="ignore")

    program: str | None = None
    therapist_id: int | None = Field(default=None, ge=1)
    enrolled_from: date | None = None
    enrolled_to: date | None = None
    group_by: Literal["program", "therapist"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (v or None) for k, v in data.items() if k in cls.model_fields}
        return data


class ThresholdForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    falling_behind_days: int = Field(ge=1, le=365)
    inactive_days: int = Field(ge=1, le=365)
    dropout_days: int = Field(ge=1, le=365)
    pace_slack_modules: int = Field(ge=0, le=50)

    @model_validator(mode="after")
    def _increasing(self) -> ThresholdForm:
        if not self.falling_behind_days < self.inactive_days < self.dropout_days:
            raise ValueError(
                _(
                    "Each threshold must be longer than the one before: "
                    "falling behind < inactive < dropped out."
                )
            )
        return self


async def _report_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    *,
    query: dict[str, str],
    threshold_form: dict[str, str] | None = None,
    threshold_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    library = library_of(request)
    therapists = await clinics_service.list_therapists(db, principal.clinic_id)
    thresholds = await thresholds_for(db, principal.clinic_id, settings)
    errors: dict[str, str] = {}
    report = None
    try:
        parsed = ReportQuery.model_validate(query)
    except ValidationError as exc:
        parsed = None
        for err in exc.errors():
            errors.setdefault(
                str(err["loc"][0]) if err["loc"] else "form", _("Enter a valid value.")
            )
    if parsed is not None:
        try:
            report = await reports.clinic_report(
                db,
                actor_for(request, principal),
                clinic_id=principal.clinic_id,
                filters=reports.ReportFilters(
                    program=parsed.program,
                    therapist_id=parsed.therapist_id,
                    enrolled_from=parsed.enrolled_from,
                    enrolled_to=parsed.enrolled_to,
                    group_by="therapist" if parsed.group_by == "therapist" else "program",
                ),
                settings=settings,
                library=library,
                now=clock.now(),
            )
        except AppError as exc:
            errors[getattr(exc, "field", None) or "form"] = translate(exc.detail)
    context: dict[str, Any] = {
        "report": report,
        "filters": {k: query.get(k, "") for k in ReportQuery.model_fields},
        "filter_errors": errors,
        "programs": PROGRAMS,
        "program_title": program_title,
        "therapists": therapists,
        "thresholds": thresholds,
        "threshold_form": threshold_form or {k: str(v) for k, v in thresholds.__dict__.items()},
        "threshold_errors": threshold_errors or {},
        "labels": STATUS_LABELS,
        "order": [s.value for s in STATUS_ORDER],
        "settings": settings,
        "csv_query": urlencode(
            {k: v for k, v in query.items() if v and k in ReportQuery.model_fields}
        ),
    }
    if report is not None:
        context["retention_svg"] = charts.bar_chart(
            [(f"M{p.module}", p.share) for p in report.cohort.retention],
            title=_("Share of started patients who completed each module"),
            chart_id="retention",
        )
        context["survival_svg"] = charts.survival_chart(
            [(p.week, p.share_active) for p in report.cohort.survival],
            title=_("Share still in treatment (not dropped out) by week"),
            chart_id="survival",
        )
    if errors and status_code == 200:
        status_code = 422
    return render(request, "adherence/report.html", context, status_code=status_code)


@router.get("/admin/reports")
async def report_page(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """The clinic report with filters, charts and the way to the research exports."""
    query = {k: v for k, v in request.query_params.items() if k in ReportQuery.model_fields}
    return await _report_page(request, principal, db, settings, clock, query=query)


@router.post("/admin/reports/thresholds")
async def thresholds_submit(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Change when a patient counts as falling behind, inactive or dropped out."""
    data = await form_data(request)
    body, errors = validate(ThresholdForm, data)
    if body is None:
        return await _report_page(
            request,
            principal,
            db,
            settings,
            clock,
            query={},
            threshold_form=data,
            threshold_errors=errors or {"form": _("Check the thresholds.")},
            status_code=422,
        )
    await save_thresholds(
        db,
        actor_for(request, principal),
        clinic_id=principal.clinic_id,
        now=clock.now(),
        **body.model_dump(),
    )
    return RedirectResponse("/admin/reports?saved=1", status_code=303)


@router.get("/admin/reports/data-dictionary")
async def data_dictionary_page(request: Request, principal: AdminUser) -> Response:
    """Every column of the research exports, explained."""
    text = DICTIONARY_PATH.read_text(encoding="utf-8") if DICTIONARY_PATH.exists() else ""
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return render(
        request,
        "adherence/data_dictionary.html",
        {"dictionary": Markup(html)},  # noqa: S704 (our own Markdown, raw HTML disabled)
    )
