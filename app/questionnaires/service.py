"""Questionnaire schedule, answers and scores, risk alerts and crisis contacts.

The schedule is derived, never stored: what is due follows from the program's instrument
lists, the treatment week and the answers already given, so changing an enrollment's
status or completing a module changes what is due without any bookkeeping.

- **Baseline** (week 0): every instrument of the program, once, after activation.
- **Weekly**: the program's weekly instruments once per treatment week (week =
  whole weeks since activation + 1). The baseline counts as the answer of the week it was
  given in, so nobody is asked the same questionnaire twice in a week.
- **End**: when the program's last module is completed or the enrollment becomes
  completed. ``baseline_and_end`` instruments are asked again; weekly ones are asked once
  more unless they were already answered in the week the treatment ended.

Only active enrollments get baseline and weekly questionnaires; a completed one gets only
its end questionnaires; invited, paused, dropped and closed ones get none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import Role, User
from app.accounts.policy import (
    Prebuilt,
    Principal,
    can_access_enrollment,
    scope_enrollments_for,
    scope_params,
)
from app.adherence import service as adherence
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.clinics.schemas import PersonRef
from app.common.crypto import FieldCipher
from app.common.errors import AppError, Conflict, Invalid, NotFound
from app.content.loader import ContentLibrary
from app.content.schemas import Instrument, Program
from app.programs.models import ModuleProgress
from app.questionnaires import scoring
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from app.questionnaires.schemas import (
    AlertRead,
    BandRead,
    CrisisInfo,
    DueRead,
    InstrumentHistory,
    InstrumentRead,
    ItemRead,
    OptionRead,
    QuestionnaireHistory,
    QuestionnaireResult,
    ReliableChangeRead,
    ScoreEntry,
)

WEEK = timedelta(days=7)
LEVEL_RANK = {"urgent": 0, "warning": 1, "info": 2}
SUMMARY_NOTICE = (
    "Item texts are summaries in Tuki's own words, not the official wording of the "
    "questionnaire. Scores and bands follow the published scoring."
)
CRISIS_MESSAGE = (
    "Thank you for answering honestly. Some of your answers tell us you may be having "
    "thoughts of death or of hurting yourself. You do not have to carry this alone. "
    "If you might act on these thoughts, or you are in danger now, call the emergency "
    "number straight away. This service is not watched around the clock. Your therapist "
    "has been told and will contact you."
)
_NEUTRAL_RANGES = (
    "the lowest range",
    "a lower range",
    "the middle range",
    "a higher range",
    "the highest range",
)


class AnswersInvalid(AppError):
    """Missing items or values that are not options: one entry per problem."""

    status_code = 422
    code = "invalid_answers"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(
            "Some answers are missing or not among the choices.", extra={"errors": errors}
        )
        self.errors = errors


@dataclass(frozen=True)
class DueQuestionnaire:
    """A questionnaire the patient should fill in now."""

    code: str
    title: str
    occasion: str  # baseline | weekly | end
    week: int


@dataclass(frozen=True)
class ScorePoint:
    id: int
    completed_at: datetime
    week: int
    total: int
    band: str
    occasion: str
    answers: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReliableChange:
    baseline_total: int
    latest_total: int
    change: int
    threshold: float
    result: scoring.Change


@dataclass(frozen=True)
class SubmissionOutcome:
    response: QuestionnaireResponse
    instrument: Instrument
    alerts: list[RiskAlert]
    crisis: CrisisInfo | None


# Schedule ------------------------------------------------------------------------------------


def treatment_week(activated_at: datetime, at: datetime) -> int:
    """Week 1 is the first seven days after activation."""
    return max(0, (at - activated_at) // WEEK) + 1


def plan_due(
    program: Program,
    library: ContentLibrary,
    *,
    activated_at: datetime,
    now: datetime,
    status: str,
    ended_at: datetime | None,
    answered: Iterable[tuple[str, str, datetime]],
) -> list[DueQuestionnaire]:
    """What is due, from (instrument, occasion, completed_at) of the answers already given.

    Pure, so the rules can be tested without a database; see the module docstring.
    """
    active = status == EnrollmentStatus.ACTIVE
    if not active and status != EnrollmentStatus.COMPLETED:
        return []
    week = treatment_week(activated_at, now)
    answered = list(answered)
    baseline_done = {code for code, occasion, _ in answered if occasion == "baseline"}
    end_done = {code for code, occasion, _ in answered if occasion == "end"}
    answered_weeks: dict[str, set[int]] = {}
    for code, _, at in answered:
        answered_weeks.setdefault(code, set()).add(treatment_week(activated_at, at))
    end_week = treatment_week(activated_at, ended_at) if ended_at is not None else None

    def title(code: str) -> str:
        return library.instrument(code).title

    baseline: list[DueQuestionnaire] = []
    end: list[DueQuestionnaire] = []
    weekly: list[DueQuestionnaire] = []
    weekly_codes = set(program.instruments.weekly)
    for code in program.instruments.all_codes:
        weeks = answered_weeks.get(code, set())
        if end_week is not None and code not in end_done:
            answered_since_end = any(w >= end_week for w in weeks)
            if code not in weekly_codes or not answered_since_end:
                end.append(DueQuestionnaire(code, title(code), "end", week))
                continue
        if not active:
            continue
        if code not in baseline_done:
            if end_week is None:
                baseline.append(DueQuestionnaire(code, title(code), "baseline", 0))
            continue
        if code in weekly_codes and week not in weeks:
            weekly.append(DueQuestionnaire(code, title(code), "weekly", week))
    return [*baseline, *end, *weekly]


async def _treatment_ended_at(
    db: AsyncSession, enrollment: Enrollment, program: Program
) -> datetime | None:
    """When the treatment reached its end: the program's last module done, or status completed."""
    candidates: list[datetime] = []
    if enrollment.status == EnrollmentStatus.COMPLETED:
        candidates.append(
            enrollment.ended_at or enrollment.status_changed_at or enrollment.created_at
        )
    # Read-only look at module progress (the programs domain owns it) for the last module.
    rows = (
        await db.execute(
            select(
                ModuleProgress.module_key, ModuleProgress.hidden_at, ModuleProgress.completed_at
            ).where(
                ModuleProgress.enrollment_id == enrollment.id,
                ModuleProgress.program == enrollment.program,
            )
        )
    ).all()
    progress = {key: (hidden_at, completed_at) for key, hidden_at, completed_at in rows}
    visible = [key for key in program.module_keys if progress.get(key, (None, None))[0] is None]
    if visible and visible[-1] in progress:
        completed_at = progress[visible[-1]][1]
        if completed_at is not None:
            candidates.append(completed_at)
    return min(candidates) if candidates else None


async def due_questionnaires(
    db: AsyncSession, enrollment: Enrollment, library: ContentLibrary, now: datetime
) -> list[DueQuestionnaire]:
    """The questionnaires this enrollment's patient should fill in now (two queries)."""
    program = library.programs.get(enrollment.program)
    if program is None or enrollment.activated_at is None:
        return []
    if enrollment.status not in (EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED):
        return []
    answered = (
        await db.execute(
            select(
                QuestionnaireResponse.instrument,
                QuestionnaireResponse.occasion,
                QuestionnaireResponse.completed_at,
            ).where(QuestionnaireResponse.enrollment_id == enrollment.id)
        )
    ).all()
    return plan_due(
        program,
        library,
        activated_at=enrollment.activated_at,
        now=now,
        status=enrollment.status,
        ended_at=await _treatment_ended_at(db, enrollment, program),
        answered=[(code, occasion, at) for code, occasion, at in answered],
    )


# Instruments ---------------------------------------------------------------------------------


def get_instrument(library: ContentLibrary, code: str) -> Instrument:
    instrument = library.instruments.get(code)
    if instrument is None:
        raise NotFound(f"There is no questionnaire called '{code}'.")
    return instrument


def instrument_view(instrument: Instrument) -> InstrumentRead:
    """Everything needed to show and answer the questionnaire; risk rules stay server-side."""
    return InstrumentRead(
        code=instrument.code,
        title=instrument.title,
        wording=instrument.wording,
        wording_notice=SUMMARY_NOTICE if instrument.wording == "summary" else None,
        recall=instrument.recall,
        direction=instrument.direction,
        source=instrument.source,
        items=[
            ItemRead(
                id=item.id,
                text=item.text,
                options=[
                    OptionRead(value=o.value, label=o.label) for o in instrument.item_options(item)
                ],
            )
            for item in instrument.items
        ],
        min_total=instrument.scoring.min,
        max_total=instrument.scoring.max,
        bands=[BandRead(min=b.min, max=b.max, label=b.label) for b in instrument.bands],
        reliable_change=instrument.reliable_change,
    )


def neutral_band(instrument: Instrument, band_label: str) -> str:
    """Where a total lies, in words that describe the range rather than diagnose.

    Patients see this instead of labels such as "severe"; therapists see the label.
    """
    labels = [band.label for band in instrument.bands]
    if band_label not in labels or len(labels) == 1:
        return "within the usual range"
    position = labels.index(band_label)
    return _NEUTRAL_RANGES[round(position / (len(labels) - 1) * (len(_NEUTRAL_RANGES) - 1))]


def direction_hint(instrument: Instrument) -> str:
    if instrument.direction == "higher_is_better":
        return "On this questionnaire, higher scores mean things are going better."
    return "On this questionnaire, lower scores mean fewer difficulties."


def answer_problems(instrument: Instrument, answers: dict[str, Any]) -> list[dict[str, str]]:
    """One field-level message per missing, unknown or out-of-range answer."""
    problems: list[dict[str, str]] = []
    known = {item.id for item in instrument.items}
    problems.extend(
        {"field": f"answers.{key}", "message": "This is not a question of this questionnaire."}
        for key in answers
        if key not in known
    )
    for number, item in enumerate(instrument.items, start=1):
        allowed = [o.value for o in instrument.item_options(item)]
        if item.id not in answers or answers[item.id] is None:
            problems.append(
                {"field": f"answers.{item.id}", "message": f"Question {number} has no answer."}
            )
            continue
        value = answers[item.id]
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            problems.append(
                {
                    "field": f"answers.{item.id}",
                    "message": (
                        f"Question {number}: {value!r} is not one of the choices "
                        f"({', '.join(str(v) for v in allowed)})."
                    ),
                }
            )
    return problems


# Submitting ----------------------------------------------------------------------------------


async def crisis_info(db: AsyncSession, clinic_id: int) -> CrisisInfo:
    clinic = await db.get(Clinic, clinic_id)
    return CrisisInfo(
        message=CRISIS_MESSAGE,
        emergency_number=(clinic.emergency_number if clinic else None) or "112",
        crisis_line_name=clinic.crisis_line_name if clinic else None,
        crisis_line_number=clinic.crisis_line_number if clinic else None,
    )


def _alert_reason(instrument: Instrument, flag: scoring.RiskFlag) -> str:
    """Rule text from the content, never anything the patient typed."""
    if flag.item is None:
        where = "total score"
    else:
        number = [item.id for item in instrument.items].index(flag.item) + 1
        where = f"question {number} ({flag.item})"
    return f"{instrument.title}, {where} = {flag.value}: {flag.reason}"[:300]


async def submit_questionnaire(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    library: ContentLibrary,
    *,
    code: str,
    answers: dict[str, Any],
    now: datetime,
) -> SubmissionOutcome:
    """Score and store one due questionnaire; raise alerts for every risk rule that fires.

    Occasion and week come from the schedule, never from the client: answering something
    that is not due is a 409 ``not_due``. The caller shows ``crisis`` at once when set.
    """
    instrument = library.instruments.get(code)
    if instrument is None:
        raise Invalid(
            f"There is no questionnaire called '{code}'.",
            field="instrument",
            code="unknown_instrument",
        )
    due = {d.code: d for d in await due_questionnaires(db, enrollment, library, now)}
    entry = due.get(code)
    if entry is None:
        raise Conflict(
            f"The {instrument.title} is not due right now.",
            code="not_due",
            extra={"due": sorted(due)},
        )
    problems = answer_problems(instrument, answers)
    if problems:
        raise AnswersInvalid(problems)
    try:
        result = scoring.score(instrument, answers)
    except scoring.AnswerError as exc:  # answer_problems already covers these; belt and braces
        raise AnswersInvalid(
            [{"field": "answers", "message": problem} for problem in exc.problems]
        ) from exc
    response = QuestionnaireResponse(
        enrollment_id=enrollment.id,
        instrument=code,
        occasion=entry.occasion,
        week=entry.week,
        answers={item.id: answers[item.id] for item in instrument.items},
        total=result.total,
        band=result.band_label,
        subscales=result.subscales or None,
        completed_at=now,
    )
    db.add(response)
    await db.flush()
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=adherence.EventKind.QUESTIONNAIRE_COMPLETED,
        at=now,
        actor_role=actor.role,
        detail={"instrument": code, "occasion": entry.occasion, "week": entry.week},
    )
    alerts = [
        RiskAlert(
            enrollment_id=enrollment.id,
            level=flag.level,
            source="questionnaire",
            source_id=response.id,
            reason=_alert_reason(instrument, flag),
            created_at=now,
        )
        for flag in sorted(result.risk, key=lambda f: LEVEL_RANK[f.level])
    ]
    if alerts:
        db.add_all(alerts)
        await db.flush()
    for alert in alerts:
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=adherence.EventKind.ALERT_RAISED,
            at=now,
            actor_role="system",
            detail={"alert_id": alert.id, "level": alert.level, "source": "questionnaire"},
        )
    await audit.record(
        db,
        actor,
        action="create",
        resource_type="questionnaire_response",
        resource_id=response.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    crisis = None
    if any(alert.level == "urgent" for alert in alerts):
        crisis = await crisis_info(db, enrollment.clinic_id)
    return SubmissionOutcome(response, instrument, alerts, crisis)


def submission_result(outcome: SubmissionOutcome) -> QuestionnaireResult:
    """What the patient is told: the total and a neutral range, never a diagnostic label."""
    response, instrument = outcome.response, outcome.instrument
    return QuestionnaireResult(
        id=response.id,
        instrument=response.instrument,
        title=instrument.title,
        occasion=response.occasion,
        week=response.week,
        completed_at=response.completed_at,
        total=response.total,
        max_total=instrument.scoring.max,
        band=neutral_band(instrument, response.band),
        therapist_notified=bool(outcome.alerts),
        crisis=outcome.crisis,
    )


# History -------------------------------------------------------------------------------------


async def score_history(db: AsyncSession, enrollment_id: int) -> dict[str, list[ScorePoint]]:
    """Every answer of an enrollment, per instrument, oldest first, in one query."""
    rows = await db.scalars(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.enrollment_id == enrollment_id)
        .order_by(QuestionnaireResponse.completed_at, QuestionnaireResponse.id)
    )
    history: dict[str, list[ScorePoint]] = {}
    for r in rows:
        history.setdefault(r.instrument, []).append(
            ScorePoint(
                id=r.id,
                completed_at=r.completed_at,
                week=r.week,
                total=r.total,
                band=r.band,
                occasion=r.occasion,
                answers=dict(r.answers),
            )
        )
    return history


def reliable_change_of(
    instrument: Instrument, points: Sequence[ScorePoint]
) -> ReliableChange | None:
    """Latest total against the baseline (or the first answer when there was no baseline)."""
    if len(points) < 2:
        return None
    baseline = next((p for p in points if p.occasion == "baseline"), points[0])
    latest = points[-1]
    if latest.id == baseline.id:
        return None
    try:
        result = scoring.reliable_change(instrument, baseline.total, latest.total)
    except ValueError:  # a total outside the current scoring range (content changed since)
        return None
    return ReliableChange(
        baseline_total=baseline.total,
        latest_total=latest.total,
        change=latest.total - baseline.total,
        threshold=instrument.reliable_change,
        result=result,
    )


def answer_rows(instrument: Instrument, point: ScorePoint) -> list[dict[str, Any]]:
    """Each question with the answer chosen, in the instrument's order, for therapists."""
    rows = []
    for number, item in enumerate(instrument.items, start=1):
        value = point.answers.get(item.id)
        labels = {o.value: o.label for o in instrument.item_options(item)}
        rows.append(
            {
                "number": number,
                "text": item.text,
                "value": value,
                "label": labels.get(value, "—") if value is not None else "—",
            }
        )
    return rows


def _codes_in_order(program: Program | None, history: dict[str, list[ScorePoint]]) -> list[str]:
    codes = list(program.instruments.all_codes) if program else []
    return codes + [code for code in history if code not in codes]


async def read_history(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    enrollment: Enrollment,
    library: ContentLibrary,
    *,
    now: datetime,
) -> QuestionnaireHistory:
    """History shaped by role: patients get neutral ranges, therapists labels and reliable
    change, clinic admins only how many were completed (never scores or answers)."""
    view = {Role.PATIENT: "patient", Role.THERAPIST: "therapist"}.get(principal.role, "admin")
    history = await score_history(db, enrollment.id)
    program = library.programs.get(enrollment.program)
    instruments: list[InstrumentHistory] = []
    for code in _codes_in_order(program, history):
        instrument = library.instruments.get(code)
        if instrument is None:
            continue
        points = history.get(code, [])
        entries = None
        if view != "admin":
            entries = [
                ScoreEntry(
                    id=p.id,
                    occasion=p.occasion,
                    week=p.week,
                    completed_at=p.completed_at,
                    total=p.total,
                    band=p.band if view == "therapist" else neutral_band(instrument, p.band),
                    answers=p.answers,
                )
                for p in points
            ]
        change = reliable_change_of(instrument, points) if view == "therapist" else None
        instruments.append(
            InstrumentHistory(
                code=code,
                title=instrument.title,
                wording=instrument.wording,
                direction=instrument.direction,
                min_total=instrument.scoring.min,
                max_total=instrument.scoring.max,
                completed=len(points),
                last_completed_at=points[-1].completed_at if points else None,
                entries=entries,
                reliable_change=ReliableChangeRead(**change.__dict__) if change else None,
            )
        )
    due = await due_questionnaires(db, enrollment, library, now)
    await audit.record(
        db,
        actor,
        action="read",
        resource_type="questionnaire_response",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return QuestionnaireHistory(
        enrollment_id=enrollment.id,
        view=view,
        instruments=instruments,
        due=[DueRead(**d.__dict__) for d in due],
    )


async def latest_response(
    db: AsyncSession, enrollment_id: int, code: str
) -> tuple[QuestionnaireResponse, list[RiskAlert]] | None:
    """The newest answer to ``code`` and the alerts it raised, for the page after submitting."""
    response = await db.scalar(
        select(QuestionnaireResponse)
        .where(
            QuestionnaireResponse.enrollment_id == enrollment_id,
            QuestionnaireResponse.instrument == code,
        )
        .order_by(QuestionnaireResponse.completed_at.desc(), QuestionnaireResponse.id.desc())
        .limit(1)
    )
    if response is None:
        return None
    alerts = await db.scalars(
        select(RiskAlert).where(
            RiskAlert.source == "questionnaire", RiskAlert.source_id == response.id
        )
    )
    return response, list(alerts)


async def therapist_scores_context(
    db: AsyncSession,
    enrollment: Enrollment,
    library: ContentLibrary,
    *,
    now: datetime | None = None,
    cipher: FieldCipher | None = None,
) -> dict[str, Any]:
    """Context for ``therapist/_scores.html`` (and ``therapist/_alerts.html``).

    Keys: ``score_instruments`` (per instrument: title, wording notice, points with band
    labels, reliable change), ``scores_due`` and ``risk_alerts`` for this enrollment.
    Does not audit: the page that includes it records its own read.
    """
    history = await score_history(db, enrollment.id)
    program = library.programs.get(enrollment.program)
    score_instruments: list[dict[str, Any]] = []
    for code in _codes_in_order(program, history):
        instrument = library.instruments.get(code)
        if instrument is None:
            continue
        points = history.get(code, [])
        score_instruments.append(
            {
                "code": code,
                "title": instrument.title,
                "summary_wording": instrument.wording == "summary",
                "wording_notice": SUMMARY_NOTICE if instrument.wording == "summary" else None,
                "min": instrument.scoring.min,
                "max": instrument.scoring.max,
                "direction": instrument.direction,
                "points": points,
                "reliable_change": reliable_change_of(instrument, points),
                "threshold": instrument.reliable_change,
                "chart": line_chart(instrument, points) if points else None,
                "answer_sets": [
                    {
                        "label": point_label(p),
                        "date": p.completed_at,
                        "items": answer_rows(instrument, p),
                    }
                    for p in reversed(points)
                ],
            }
        )
    due = await due_questionnaires(db, enrollment, library, now) if now is not None else []
    alerts = await _alert_views(
        db,
        _alert_query().where(RiskAlert.enrollment_id == enrollment.id),
        show_notes=True,
        cipher=cipher,
    )
    return {
        "score_instruments": score_instruments,
        "scores_due": due,
        "risk_alerts": alerts,
        "ack_next": f"/therapist/patients/{enrollment.id}",
    }


# Alerts --------------------------------------------------------------------------------------


def _alert_query() -> Any:
    patient_user = aliased(User, name="patient_user")
    acknowledger = aliased(User, name="acknowledger")
    unacknowledged_first = case((RiskAlert.acknowledged_at.is_(None), 0), else_=1)
    level_rank = case(LEVEL_RANK, value=RiskAlert.level, else_=3)
    return (
        select(
            RiskAlert,
            Enrollment.program,
            Enrollment.patient_id,
            patient_user.full_name,
            acknowledger.full_name,
        )
        .join(Enrollment, Enrollment.id == RiskAlert.enrollment_id)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .join(patient_user, patient_user.id == Patient.user_id)
        .outerjoin(acknowledger, acknowledger.id == RiskAlert.acknowledged_by_id)
        .order_by(
            unacknowledged_first, level_rank, RiskAlert.created_at.desc(), RiskAlert.id.desc()
        )
    )


def _alert_list(role: Role, status: str) -> Any:
    stmt = scope_enrollments_for(_alert_query(), role, Enrollment)
    if status == "open":
        stmt = stmt.where(RiskAlert.acknowledged_at.is_(None))
    elif status == "acknowledged":
        stmt = stmt.where(RiskAlert.acknowledged_at.is_not(None))
    return stmt.limit(bindparam("limit", type_=Integer()))


# The work list asks for the open alerts on every load.
_ALERT_LISTS: Prebuilt[tuple[Role, str]] = Prebuilt(lambda key: _alert_list(*key))


def _decrypt(cipher: FieldCipher | None, value: str | None) -> str | None:
    if cipher is None or value is None:
        return None
    try:
        return cipher.decrypt(value)
    except ValueError:
        return None


async def _alert_views(
    db: AsyncSession,
    stmt: Any,
    params: dict[str, Any] | None = None,
    *,
    show_notes: bool,
    cipher: FieldCipher | None,
) -> list[AlertRead]:
    rows = await db.execute(stmt, params)
    return [
        AlertRead(
            id=alert.id,
            enrollment_id=alert.enrollment_id,
            patient=PersonRef(id=patient_id, full_name=patient_name),
            program=program,
            level=alert.level,
            source=alert.source,
            reason=alert.reason,
            created_at=alert.created_at,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=(
                PersonRef(id=alert.acknowledged_by_id, full_name=acknowledger_name)
                if alert.acknowledged_by_id is not None and acknowledger_name
                else None
            ),
            note=_decrypt(cipher, alert.action_note_encrypted) if show_notes else None,
        )
        for alert, program, patient_id, patient_name, acknowledger_name in rows
    ]


async def list_alerts(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    *,
    cipher: FieldCipher | None,
    status: str = "all",
    limit: int = 100,
    now: datetime,
) -> list[AlertRead]:
    """Alerts the caller may see, unacknowledged first, then urgent before warning before info.

    Therapists see their own patients' alerts with their notes; clinic admins see the
    clinic's alerts without notes. One query plus one audit statement, whatever the count.
    """
    alerts = await _alert_views(
        db,
        _ALERT_LISTS[(principal.role, status)],
        {**scope_params(principal), "limit": limit},
        show_notes=principal.role is Role.THERAPIST,
        cipher=cipher,
    )
    await audit.record_many(
        db,
        actor,
        action="list",
        resource_type="risk_alert",
        targets=[(alert.id, alert.patient.id) for alert in alerts],
        at=now,
    )
    return alerts


async def acknowledge_alert(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    alert_id: int,
    *,
    note: str | None,
    cipher: FieldCipher,
    now: datetime,
) -> AlertRead:
    """The assigned (or covering) therapist marks an alert as seen, optionally with a short encrypted note.

    Anyone else gets 404, exactly as if the alert did not exist; a second acknowledgement
    is a 409, decided by a conditional UPDATE so two at once cannot both win.
    """
    found = (
        await db.execute(
            select(RiskAlert.id, Enrollment)
            .join(Enrollment, Enrollment.id == RiskAlert.enrollment_id)
            .where(RiskAlert.id == alert_id)
        )
    ).first()
    if (
        found is None
        or principal.role is not Role.THERAPIST
        or not can_access_enrollment(principal, found[1])
    ):
        raise NotFound("Alert not found.")
    enrollment: Enrollment = found[1]
    note = (note or "").strip() or None
    claimed = await db.execute(
        update(RiskAlert)
        .where(RiskAlert.id == alert_id, RiskAlert.acknowledged_at.is_(None))
        .values(
            acknowledged_at=now,
            acknowledged_by_id=principal.user_id,
            action_note_encrypted=cipher.encrypt(note) if note else None,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise Conflict("This alert has already been acknowledged.", code="already_acknowledged")
    await audit.record(
        db,
        actor,
        action="acknowledge",
        resource_type="risk_alert",
        resource_id=alert_id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    views = await _alert_views(
        db,
        _alert_query().where(RiskAlert.id == alert_id).execution_options(populate_existing=True),
        show_notes=True,
        cipher=cipher,
    )
    return views[0]


# Charts --------------------------------------------------------------------------------------

CHART_WIDTH = 640
CHART_HEIGHT = 260
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 48, 20, 16, 44


def point_label(point: ScorePoint) -> str:
    if point.occasion == "baseline":
        return "Start"
    if point.occasion == "end":
        return "End"
    return f"Week {point.week}"


def line_chart(instrument: Instrument, points: Sequence[ScorePoint]) -> dict[str, Any]:
    """Coordinates for a small server-rendered SVG line chart of totals over time.

    Band boundaries are drawn as dashed lines; the page always pairs the chart with a
    table, which is the accessible version of the same figures.
    """
    lo, hi = instrument.scoring.min, instrument.scoring.max
    plot_w = CHART_WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = CHART_HEIGHT - _PAD_TOP - _PAD_BOTTOM
    span = max(1, hi - lo)

    def y(value: float) -> float:
        return round(_PAD_TOP + plot_h * (1 - (value - lo) / span), 1)

    n = len(points)
    step = max(1, -(-n // 10))  # label at most about ten points along the axis
    inset = 24  # keep the first and last dots and their labels off the chart's edges
    dots = []
    for i, point in enumerate(points):
        x = (
            _PAD_LEFT
            + inset
            + ((plot_w - 2 * inset) * i / (n - 1) if n > 1 else plot_w / 2 - inset)
        )
        dots.append(
            {
                "x": round(x, 1),
                "y": y(point.total),
                "total": point.total,
                "label": point_label(point),
                "show_label": i % step == 0 or i == n - 1,
            }
        )
    boundaries = [{"y": y(band.min - 0.5), "value": band.min} for band in instrument.bands[1:]]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": _PAD_LEFT,
        "right": CHART_WIDTH - _PAD_RIGHT,
        "top": _PAD_TOP,
        "bottom": CHART_HEIGHT - _PAD_BOTTOM,
        "min": lo,
        "max": hi,
        "y_min": y(lo),
        "y_max": y(hi),
        "boundaries": boundaries,
        "dots": dots,
        "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "label_y": CHART_HEIGHT - _PAD_BOTTOM + 20,
    }
