"""Pseudonymised research CSV: enrollments, events and scores, streamed from the database.

What never leaves: names, e-mail addresses, phone numbers, message bodies, exercise
answers, notes, internal ids. Each dataset is declared once below (its query, its columns
and what each column means); the CSV writer and ``docs/data-dictionary.md`` are both made
from these declarations, so the dictionary documents every column by construction.

Rows are read with ``stream()`` (a server-side cursor on PostgreSQL) in partitions and
written out as they come, so memory stays flat whatever the clinic's size. Every text cell
is guarded against spreadsheet formula injection.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, select

from app.adherence.models import AdherenceEvent, EnrollmentRollup
from app.adherence.reports import ReportFilters, apply_filters
from app.adherence.service import GESTURES
from app.adherence.sql import DAY, epoch_seconds
from app.adherence.status import STATUS_LABELS, columns, with_rollup
from app.clinics.models import Enrollment
from app.config import Settings
from app.content.loader import ContentLibrary
from app.db import Database
from app.exports.pseudonym import Pseudonymiser
from app.questionnaires.models import QuestionnaireResponse

Dataset = Literal["enrollments", "events", "scores"]
PARTITION = 1000

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.:\- ]{1,120}$")


def safe_cell(value: Any) -> str:
    """A CSV cell that no spreadsheet will run as a formula.

    Text starting with ``= + - @`` (or a tab/carriage return, which some programs skip) is
    prefixed with an apostrophe, the OWASP recommendation. Numbers stay numbers.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _token(value: Any) -> str | None:
    """A value from an event's detail only if it is a short code (slug, id, level), never
    free text: anything else is dropped rather than exported."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _SAFE_TOKEN.match(value):
        return value
    return None


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | integer | decimal | date | datetime | boolean
    description: str


@dataclass(frozen=True)
class Spec:
    title: str
    description: str
    columns: tuple[Column, ...]


DAY_NOTE = "Days since the treatment started (activation, or enrollment if never started)."

SPECS: dict[str, Spec] = {
    "enrollments": Spec(
        "Enrollments",
        "One row per enrollment (a patient in one program with one therapist).",
        (
            Column(
                "pseudonym",
                "text",
                "Pseudonym of the enrollment: HMAC-SHA256 of its id under the export key; stable for one key.",
            ),
            Column(
                "therapist_pseudonym",
                "text",
                "Pseudonym of the assigned therapist, under the same key.",
            ),
            Column(
                "program",
                "text",
                "Program slug: depression, gad, ocd, bipolar, social-anxiety, bulimia, alcohol, panic or insomnia.",
            ),
            Column(
                "enrollment_status",
                "text",
                "Treatment status: invited, active, paused, completed, dropped or closed.",
            ),
            Column(
                "adherence_status",
                "text",
                "Adherence status at export time: on_track, falling_behind, inactive, dropped_out or completed (rules in docs/adherence.md).",
            ),
            Column("enrolled_on", "date", "Date the patient was enrolled (UTC)."),
            Column(
                "started_on",
                "date",
                "Date the patient accepted the invitation and started (UTC); empty if not started.",
            ),
            Column(
                "ended_on",
                "date",
                "Date the treatment was completed, dropped or closed (UTC); empty while open.",
            ),
            Column(
                "days_since_activity",
                "integer",
                "Whole days from the last patient activity (or the start) to export time, or to the pause/closing date.",
            ),
            Column("modules_completed", "integer", "Modules the patient completed."),
            Column(
                "modules_total",
                "integer",
                "Modules on the patient's path (the program's modules, plus any the therapist added, minus hidden ones).",
            ),
            Column(
                "exercises_submitted",
                "integer",
                "Exercise answers submitted (drafts are not counted).",
            ),
            Column("questionnaires_completed", "integer", "Questionnaires completed."),
            Column("logins", "integer", "Times the patient logged in."),
            Column(
                "messages_from_patient", "integer", "Messages the patient sent to the therapist."
            ),
            Column("messages_to_patient", "integer", "Messages the therapist sent to the patient."),
            *(
                Column(
                    f"gestures_{name}",
                    "integer",
                    f"Therapist messages tagged as supporting {name.replace('_', ' ')}.",
                )
                for name in GESTURES
            ),
            Column("reminders_sent", "integer", "Reminders sent to the patient on any channel."),
            Column("reminders_opened", "integer", "Reminders the patient opened."),
            Column(
                "alerts_raised",
                "integer",
                "Risk alerts raised (questionnaire answers, inactivity).",
            ),
            Column(
                "first_activity_day", "integer", f"Day of the first patient activity. {DAY_NOTE}"
            ),
            Column(
                "last_activity_day", "integer", f"Day of the latest patient activity. {DAY_NOTE}"
            ),
        ),
    ),
    "events": Spec(
        "Events",
        "One row per entry in the adherence log, oldest first within each enrollment.",
        (
            Column(
                "pseudonym", "text", "Pseudonym of the enrollment (as in the enrollments file)."
            ),
            Column(
                "kind",
                "text",
                "What happened: login, invitation_accepted, module_opened, page_viewed, exercise_saved, exercise_submitted, module_completed, questionnaire_completed, message_sent, message_read, feedback_read, reminder_sent, reminder_opened, alert_raised or status_changed.",
            ),
            Column("actor_role", "text", "Who did it: patient, therapist, admin or system."),
            Column("at", "datetime", "When, in UTC (ISO 8601)."),
            Column("day", "integer", DAY_NOTE),
            Column(
                "module",
                "text",
                "Module key for module and exercise events (program:key for a module added from another program).",
            ),
            Column("exercise", "text", "Exercise id within the module."),
            Column("exercise_type", "text", "Exercise type, e.g. thought_record, sleep_diary."),
            Column("page", "integer", "Page number for page_viewed."),
            Column("instrument", "text", "Questionnaire code for questionnaire_completed."),
            Column("occasion", "text", "Questionnaire occasion: baseline, weekly, end or extra."),
            Column(
                "week", "integer", "Treatment week the questionnaire belongs to (0 = baseline)."
            ),
            Column("rule", "text", "Reminder rule for reminder events."),
            Column("channel", "text", "Reminder channel: in_app, email or sms."),
            Column("level", "text", "Risk alert level: info, warning or urgent."),
            Column("source", "text", "What raised the alert: questionnaire or inactivity."),
            Column("status_from", "text", "Previous treatment status, for status_changed."),
            Column("status_to", "text", "New treatment status, for status_changed."),
            Column(
                "functions",
                "text",
                "Support functions a therapist message was tagged with, separated by ';' (autonomy, alliance, emotion_regulation).",
            ),
            Column(
                "anchored",
                "boolean",
                "Whether a message was feedback anchored to an exercise or questionnaire answer.",
            ),
        ),
    ),
    "scores": Spec(
        "Scores",
        "One row per completed questionnaire (totals and bands only; item answers are not exported).",
        (
            Column(
                "pseudonym", "text", "Pseudonym of the enrollment (as in the enrollments file)."
            ),
            Column("instrument", "text", "Questionnaire code, e.g. phq9, gad7."),
            Column("occasion", "text", "baseline, weekly, end or extra."),
            Column("week", "integer", "Treatment week (0 = baseline)."),
            Column("completed_at", "datetime", "When it was completed, in UTC (ISO 8601)."),
            Column("day", "integer", DAY_NOTE),
            Column("total", "integer", "Total score under the instrument's scoring rules."),
            Column(
                "band", "text", "Severity band label of the total, from the instrument definition."
            ),
        ),
    ),
}

_DETAIL_COLUMNS = {
    "module": "module",
    "exercise": "exercise",
    "exercise_type": "type",
    "page": "page",
    "instrument": "instrument",
    "occasion": "occasion",
    "week": "week",
    "rule": "rule",
    "channel": "channel",
    "level": "level",
    "source": "source",
    "status_from": "from",
    "status_to": "to",
}


def render_dictionary() -> str:
    """``docs/data-dictionary.md``: every dataset and column of the research export."""
    lines = [
        "# Data dictionary: research exports",
        "",
        "Generated from `app/exports/tabular.py` (a test keeps this file in step).",
        "Files come from `GET /api/v1/exports/adherence.csv?dataset=<name>` (clinic admins",
        "only; filters `program`, `therapist_id`, `enrolled_from`, `enrolled_to` as in the",
        "report). They are pseudonymised: no names, e-mail addresses, phone numbers, message",
        "bodies, exercise answers or notes. Pseudonyms are HMAC-SHA256 of the internal id",
        "under `TUKI_EXPORT_PSEUDONYM_KEY`: stable for one key, so files taken at different",
        "times join; change the key and they no longer link. Text cells that start with",
        "`=`, `+`, `-` or `@` carry a leading apostrophe so spreadsheets never run them.",
        "Empty cell: no value. Encoding UTF-8, comma-separated, header row first.",
        "",
    ]
    for name, spec in SPECS.items():
        lines += [
            f"## {spec.title} (`dataset={name}`)",
            "",
            spec.description,
            "",
            "| Column | Type | Meaning |",
            "| --- | --- | --- |",
        ]
        lines += [f"| `{c.name}` | {c.kind} | {c.description} |" for c in spec.columns]
        lines.append("")
    return "\n".join(lines)


def _day(at: datetime | None, start: datetime | None) -> int | None:
    if at is None or start is None:
        return None
    return int((at - start).total_seconds() // DAY)


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


@dataclass(frozen=True)
class _Plan:
    stmt: Select[Any]
    row: Callable[[Any], Sequence[Any]]


def _plan(
    dataset: str,
    *,
    clinic_id: int,
    filters: ReportFilters,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
    names: Pseudonymiser,
) -> _Plan:
    start = Enrollment.activated_at
    if dataset == "enrollments":
        cols = columns(settings, library, now)
        r = EnrollmentRollup
        stmt = apply_filters(
            with_rollup(
                select(
                    Enrollment.id,
                    Enrollment.therapist_id,
                    Enrollment.program,
                    Enrollment.status,
                    cols.status.label("adherence_status"),
                    Enrollment.created_at,
                    Enrollment.activated_at,
                    Enrollment.ended_at,
                    (cols.idle_seconds // DAY).label("idle_days"),
                    cols.modules_completed.label("done"),
                    cols.modules_total.label("total"),
                    r.exercises_submitted,
                    r.questionnaires_completed,
                    r.login_count,
                    r.messages_from_patient,
                    r.messages_to_patient,
                    *[getattr(r, f"gestures_{g}") for g in GESTURES],
                    r.reminders_sent,
                    r.reminders_opened,
                    r.alerts_raised,
                    ((epoch_seconds(r.first_activity_at) - cols.start_epoch) // DAY).label("fd"),
                    ((epoch_seconds(r.last_activity_at) - cols.start_epoch) // DAY).label("ld"),
                ).select_from(Enrollment)
            ),
            clinic_id,
            filters,
        ).order_by(Enrollment.id)

        def enrollment_row(row: Any) -> Sequence[Any]:
            counters = [int(v or 0) for v in row[11 : 11 + 8 + len(GESTURES)]]
            return [
                names.enrollment(row.id),
                names.therapist(row.therapist_id),
                row.program,
                row.status,
                row.adherence_status if row.adherence_status in STATUS_LABELS else None,
                _date(row.created_at),
                _date(row.activated_at),
                _date(row.ended_at),
                max(0, int(row.idle_days)),
                min(int(row.done), int(row.total)),
                int(row.total),
                *counters,
                row.fd,
                row.ld,
            ]

        return _Plan(stmt, enrollment_row)
    if dataset == "events":
        e = AdherenceEvent
        stmt = apply_filters(
            select(
                e.enrollment_id,
                e.kind,
                e.actor_role,
                e.at,
                e.detail,
                start.label("start"),
                Enrollment.created_at.label("created"),
            ).join(Enrollment, Enrollment.id == e.enrollment_id),
            clinic_id,
            filters,
        ).order_by(e.enrollment_id, e.at, e.id)

        def event_row(row: Any) -> Sequence[Any]:
            detail = row.detail if isinstance(row.detail, dict) else {}
            functions = detail.get("functions")
            tagged = (
                ";".join(f for f in GESTURES if f in functions)
                if isinstance(functions, list)
                else None
            )
            anchored = detail.get("anchored")
            return [
                names.enrollment(row.enrollment_id),
                row.kind,
                row.actor_role,
                row.at,
                _day(row.at, row.start or row.created),
                *[_token(detail.get(key)) for key in _DETAIL_COLUMNS.values()],
                tagged,
                anchored if isinstance(anchored, bool) else None,
            ]

        return _Plan(stmt, event_row)
    q = QuestionnaireResponse
    stmt = apply_filters(
        select(
            q.enrollment_id,
            q.instrument,
            q.occasion,
            q.week,
            q.completed_at,
            q.total,
            q.band,
            start.label("start"),
            Enrollment.created_at.label("created"),
        ).join(Enrollment, Enrollment.id == q.enrollment_id),
        clinic_id,
        filters,
    ).order_by(q.enrollment_id, q.completed_at, q.id)

    def score_row(row: Any) -> Sequence[Any]:
        return [
            names.enrollment(row.enrollment_id),
            row.instrument,
            row.occasion,
            int(row.week),
            row.completed_at,
            _day(row.completed_at, row.start or row.created),
            int(row.total),
            row.band,
        ]

    return _Plan(stmt, score_row)


async def stream_csv(
    database: Database,
    dataset: str,
    *,
    clinic_id: int,
    filters: ReportFilters,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> AsyncIterator[str]:
    """Yield the CSV text a partition at a time, from a session of its own (the request's
    session has committed and closed by the time the body is sent)."""
    plan = _plan(
        dataset,
        clinic_id=clinic_id,
        filters=filters,
        settings=settings,
        library=library,
        now=now,
        names=Pseudonymiser(settings.export_pseudonym_key.get_secret_value()),
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in SPECS[dataset].columns])
    yield buffer.getvalue()
    async with database.sessionmaker() as session:
        result = await session.stream(plan.stmt.execution_options(yield_per=PARTITION))
        async for partition in result.partitions():
            buffer.seek(0)
            buffer.truncate()
            for row in partition:
                writer.writerow([safe_cell(v) for v in plan.row(row)])
            yield buffer.getvalue()
        await result.close()


def covered_enrollments(clinic_id: int, filters: ReportFilters) -> Any:
    """(enrollment id, patient id) of everyone an export covers, for the disclosure log."""
    return apply_filters(
        select(Enrollment.id, Enrollment.patient_id).select_from(Enrollment), clinic_id, filters
    )
