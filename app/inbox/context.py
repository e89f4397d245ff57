"""What a therapist sees beside the composer: where the patient is, and what to anchor to.

Built from the programs and questionnaires services (path, submitted work, score
history) plus one light query for the ids of submitted exercises, which anchors need and
the programs' work list does not carry. A fixed number of statements whatever the
caseload or the length of the thread. Does not audit: the thread page records its read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Role
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.clinics.schemas import EnrollmentRead
from app.common.crypto import FieldCipher
from app.content.loader import ContentLibrary
from app.inbox.service import occasion_label
from app.inbox.snippets import PlaceholderValues
from app.inbox.triage import exercise_titles
from app.programs import service as programs
from app.programs.exercises import field_schema
from app.programs.models import ExerciseResponse
from app.programs.pages import answer_items, derived_items
from app.programs.schemas import ExerciseWorkRead
from app.questionnaires import service as questionnaires

FALLBACK_MODULE = "this part of the program"


@dataclass(frozen=True)
class AnchorOption:
    value: str  # "exercise-12" or "questionnaire-7", as posted by the composer
    label: str
    at: datetime | None


@dataclass(frozen=True)
class Trend:
    title: str
    totals: list[int]
    latest_band: str
    change: str | None  # "improved", "deteriorated", "no_reliable_change" or None


@dataclass
class PatientContext:
    enrollment: EnrollmentRead
    first_name: str
    module_title: str | None
    module_status: str | None
    completed: int
    total: int
    latest: ExerciseWorkRead | None
    latest_answers: list[Any]
    anchored: dict[str, ExerciseWorkRead] = field(default_factory=dict)
    trends: list[Trend] = field(default_factory=list)
    exercise_options: list[AnchorOption] = field(default_factory=list)
    questionnaire_options: list[AnchorOption] = field(default_factory=list)

    def placeholders(self, therapist_name: str) -> PlaceholderValues:
        return PlaceholderValues(
            first_name=self.first_name,
            module_title=self.module_title or FALLBACK_MODULE,
            therapist_name=therapist_name,
        )


def _answers(library: ContentLibrary, item: ExerciseWorkRead) -> list[Any]:
    """The submitted answer as label/value pairs, as the therapist's patient page shows it."""
    source = library.programs.get(item.program)
    module = source.modules.get(item.module_key) if source else None
    if module is None or item.response.data is None:
        return []
    try:
        spec = module.exercise(item.exercise_id)
    except KeyError:
        return []
    schema = programs.form_fields_read(field_schema(spec.type, spec))
    return answer_items(schema, item.response.data) + derived_items(item.response.derived)


async def placeholder_values(
    db: AsyncSession,
    enrollment: Enrollment,
    *,
    library: ContentLibrary,
    therapist_name: str,
    now: datetime,
) -> PlaceholderValues:
    """What ``{first_name}``, ``{module_title}`` and ``{therapist_name}`` stand for here."""
    view = await clinics_service.enrollment_view(db, enrollment.id)
    path = await programs.load_path(db, enrollment, library, now=now)
    current = path.next_item() or path.waiting_item()
    return PlaceholderValues(
        first_name=view.patient.full_name.split(" ", 1)[0],
        module_title=current.module.title if current else FALLBACK_MODULE,
        therapist_name=therapist_name,
    )


async def patient_context(
    db: AsyncSession,
    enrollment: Enrollment,
    *,
    library: ContentLibrary,
    cipher: FieldCipher,
    now: datetime,
) -> PatientContext:
    view = await clinics_service.enrollment_view(db, enrollment.id)
    path = await programs.load_path(db, enrollment, library, now=now)
    current = path.next_item() or path.waiting_item()
    work = await programs.work_for(db, Role.THERAPIST, enrollment, library, cipher)
    submitted = list(
        await db.execute(
            select(
                ExerciseResponse.id,
                ExerciseResponse.program,
                ExerciseResponse.module_key,
                ExerciseResponse.exercise_id,
                ExerciseResponse.submitted_at,
            )
            .where(
                ExerciseResponse.enrollment_id == enrollment.id,
                ExerciseResponse.status == "submitted",
            )
            .order_by(ExerciseResponse.submitted_at.desc(), ExerciseResponse.id.desc())
        )
    )
    history = await questionnaires.score_history(db, enrollment.id)

    by_key = {(w.program, w.module_key, w.exercise_id): w for w in work}
    exercise_options = []
    anchored: dict[str, ExerciseWorkRead] = {}
    for response_id, program, module_key, exercise_id, submitted_at in submitted:
        exercise_title, module_title = exercise_titles(library, program, module_key, exercise_id)
        value = f"exercise-{response_id}"
        exercise_options.append(
            AnchorOption(value, f"{exercise_title} ({module_title})", submitted_at)
        )
        item = by_key.get((program, module_key, exercise_id))
        if item is not None:
            anchored[value] = item
    questionnaire_options = []
    trends = []
    for code, points in history.items():
        instrument = library.instruments.get(code)
        title = instrument.title if instrument else code
        for point in reversed(points):
            questionnaire_options.append(
                AnchorOption(
                    f"questionnaire-{point.id}",
                    f"{title}, {occasion_label(point.occasion, point.week)}: {point.total}",
                    point.completed_at,
                )
            )
        change = questionnaires.reliable_change_of(instrument, points) if instrument else None
        trends.append(
            Trend(
                title=title,
                totals=[p.total for p in points],
                latest_band=points[-1].band if points else "",
                change=change.result if change else None,
            )
        )
    questionnaire_options.sort(key=lambda o: o.at or now, reverse=True)
    latest = work[0] if work else None
    return PatientContext(
        enrollment=view,
        first_name=view.patient.full_name.split(" ", 1)[0],
        module_title=current.module.title if current else None,
        module_status=current.verdict.status.value if current else None,
        completed=path.completed,
        total=len(path.visible),
        latest=latest,
        latest_answers=_answers(library, latest) if latest else [],
        anchored=anchored,
        trends=trends,
        exercise_options=exercise_options,
        questionnaire_options=questionnaire_options,
    )


def answers_for(
    library: ContentLibrary, context: PatientContext, anchor: str | None
) -> tuple[ExerciseWorkRead, list[Any]] | None:
    """The anchored exercise with its answers, to show while writing feedback on it."""
    if not anchor or anchor not in context.anchored:
        return None
    item = context.anchored[anchor]
    return item, _answers(library, item)
