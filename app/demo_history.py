"""Plausible treatment history for the demo patients, written through the real services.

Each patient is walked through time: baseline questionnaires, then a module roughly every
week with its exercises filled in, and weekly questionnaires whose scores slowly improve.
Some patients stop partway (the caseload should show who is falling behind), and one
depression patient answers the self-harm item, so the therapist sees an urgent alert.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Role, User
from app.audit.service import Actor
from app.clinics.models import Enrollment
from app.common.crypto import FieldCipher
from app.content.loader import ContentLibrary
from app.content.schemas import Instrument
from app.programs import exercises
from app.programs import service as programs
from app.programs.exercises import FormField
from app.programs.pacing import LockReason, Status
from app.programs.schemas import OpenEarly
from app.questionnaires import service as questionnaires

# Field values that keep the cross-field checks of diaries consistent.
_BY_NAME: dict[str, Any] = {
    "bed_time": "23:10",
    "lights_out": "23:25",
    "final_wake": "06:40",
    "out_of_bed": "07:05",
    "minutes_to_sleep": 25,
    "minutes_awake": 30,
    "times_woken": 2,
    "volume_ml": 330,
    "abv": 4.7,
    "count": 2,
    "suds_before": 60,
    "suds_peak": 75,
    "suds_after": 30,
    "suds": 55,
    "tension_before": 7,
    "tension_after": 3,
    "belief_before": 80,
    "belief_after": 45,
    "thought_belief": 80,
    "thought_belief_after": 40,
}

_TEXTS = [
    "I went for a short walk after work even though I did not feel like it.",
    "My first thought was that I would make a fool of myself.",
    "It was easier than I expected once I had started.",
    "I noticed the worry came back in the evening, and I let it pass.",
    "Talking to my sister helped more than I thought it would.",
]


def _value(field: FormField, n: int, day0: date) -> Any:
    name = field.name.rsplit(".", 1)[-1]
    if name in _BY_NAME:
        return _BY_NAME[name]
    if field.kind == "rows":
        return [_sample(field.fields, n + i, day0 - timedelta(days=i + 1)) for i in range(2)]
    if field.kind in ("text", "textarea"):
        return _TEXTS[n % len(_TEXTS)]
    if field.kind == "int":
        lo = int(field.min) if field.min is not None else 0
        hi = int(field.max) if field.max is not None else lo + 10
        return lo + (hi - lo) * (3 + n % 4) // 10
    if field.kind == "decimal":
        low = float(field.min) if field.min is not None else 0.0
        high = float(field.max) if field.max is not None else low + 10
        return round(low + (high - low) / 4, 1)
    if field.kind == "time":
        return "18:30"
    if field.kind == "date":
        return day0.isoformat()
    if field.kind == "bool":
        return True
    if field.kind == "choice":
        return field.choices[n % len(field.choices)][0]
    return None


def _sample(fields: list[FormField], n: int, day0: date) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for i, field in enumerate(fields):
        base, dot, _ = field.name.partition(".")
        if dot:
            data.setdefault(base, []).append(_value(field, n + i, day0))
        else:
            data[field.name] = _value(field, n + i, day0)
    return data


def _answers(instrument: Instrument, severity: float, *, self_harm: bool) -> dict[str, int]:
    """Answers at a given severity (0..1); the direction of the scale is respected."""
    if instrument.direction == "higher_is_better":
        severity = 1 - severity
    answers: dict[str, int] = {}
    risk_items = {rule.item for rule in instrument.risk if rule.item}
    for item in instrument.items:
        values = sorted(o.value for o in instrument.item_options(item))
        if item.id in risk_items:
            answers[item.id] = values[1] if self_harm and len(values) > 1 else values[0]
            continue
        answers[item.id] = values[min(len(values) - 1, round(severity * (len(values) - 1)))]
    return answers


async def _answer_due(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    library: ContentLibrary,
    at: datetime,
    severity: float,
    *,
    self_harm: bool = False,
) -> None:
    for due in await questionnaires.due_questionnaires(db, enrollment, library, at):
        instrument = library.instrument(due.code)
        answers = _answers(instrument, severity, self_harm=self_harm and due.code == "phq9")
        await questionnaires.submit_questionnaire(
            db, actor, enrollment, library, code=due.code, answers=answers, now=at
        )


async def _work_next_module(
    db: AsyncSession,
    patient: Actor,
    therapist: Actor,
    enrollment: Enrollment,
    library: ContentLibrary,
    cipher: FieldCipher,
    at: datetime,
    n: int,
) -> bool:
    """Open, fill in and complete the next module; False when nothing is open yet."""
    path = await programs.load_path(db, enrollment, library, now=at)
    item = next(
        (i for i in path.items if not i.hidden and i.verdict.status is not Status.COMPLETED), None
    )
    if item is None:
        return False
    if item.verdict.status is Status.LOCKED:
        if item.verdict.reason is not LockReason.THERAPIST_GATE:
            return False
        await programs.apply_tailoring(
            db,
            therapist,
            enrollment,
            OpenEarly(action="open_early", module=item.ref),
            library,
            now=at,
        )
    await programs.open_module(
        db, patient, Role.PATIENT, enrollment, item.ref, library, cipher, page=None, now=at
    )
    for spec in item.module.exercises:
        fields = exercises.field_schema(spec.type, spec)
        outcome = await programs.submit_exercise(
            db,
            patient,
            enrollment,
            item.ref,
            spec.id,
            library,
            cipher,
            data=_sample(fields, n, at.date()),
            version=0,
            grams_per_standard_drink=12.0,
            now=at,
        )
        if outcome.errors:
            raise ValueError(f"demo answer for {spec.type} was refused: {outcome.errors}")
    await programs.complete_module(db, patient, enrollment, item.ref, library, now=at)
    return True


async def add_history(
    db: AsyncSession,
    *,
    enrollment: Enrollment,
    patient_user: User,
    therapist: User,
    library: ContentLibrary,
    cipher: FieldCipher,
    now: datetime,
    seed: int,
) -> None:
    """Walk one patient from their start date to now."""
    assert enrollment.activated_at is not None
    start = enrollment.activated_at
    patient = Actor(user_id=patient_user.id, role="patient", clinic_id=enrollment.clinic_id)
    staff = Actor(user_id=therapist.id, role="therapist", clinic_id=enrollment.clinic_id)
    stops_at = now - timedelta(days=10) if seed % 4 == 1 else now
    await _answer_due(db, patient, enrollment, library, start + timedelta(hours=1), 0.65)
    week = 0
    at = start + timedelta(days=1, hours=19)
    while at < stops_at - timedelta(hours=2):
        if (at - start).days >= 7 * (week + 1):
            week += 1
            severity = max(0.15, 0.65 - 0.07 * week)
            self_harm = enrollment.program == "depression" and at + timedelta(days=7) > stops_at
            await _answer_due(db, patient, enrollment, library, at, severity, self_harm=self_harm)
        await _work_next_module(db, patient, staff, enrollment, library, cipher, at, seed + week)
        at += timedelta(days=7)
