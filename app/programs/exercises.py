"""Exercise types: the form fields, their validation and the values derived from them.

Content only names a type (``ExerciseSpec.type``); everything about the form lives here
once. Two levels of validation exist because a patient's typing must never be lost:

* :func:`validate_draft` accepts any partially filled form but still rejects values of the
  wrong type, out of range, too long, or too many rows, so a stored draft is always
  well-formed.
* :func:`validate_submission` additionally requires the fields a type needs, checks
  cross-field consistency (a peak below the start, a sleep diary whose minutes awake
  exceed the time in bed) and returns the derived values (sleep efficiency, standard
  drinks, SUDS change …).

Field paths in errors and in :func:`field_schema` are dotted: ``rows.0.suds_before``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypedDict, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from app.content.schemas import ExerciseSpec

SHORT_TEXT = 300
LONG_TEXT = 5000
MAX_ROWS = 60

ETHANOL_G_PER_ML = 0.789
DEFAULT_GRAMS_PER_STANDARD_DRINK = 12.0
DEFAULT_HEAVY_DAY_GRAMS = 60.0
"""WHO's heavy episodic drinking level: 60 g of ethanol on one occasion or day."""
SHORT_SLEEP_HOURS = 6.0
"""Mood chart nights below this count as short; less sleep is an early sign of high mood."""

Kind = Literal["text", "textarea", "int", "decimal", "time", "date", "bool", "choice", "rows"]


class FieldError(TypedDict):
    field: str
    message: str


class ExerciseValidationError(ValueError):
    """Raised with every bad field, so a form can mark all of them at once."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field'] or '(form)'}: {e['message']}" for e in errors))


class UnknownExerciseTypeError(LookupError):
    """A type name that no exercise model handles (content is checked for this at load)."""


@dataclass(frozen=True)
class SubmissionResult:
    data: dict[str, Any]
    derived: dict[str, Any]


@dataclass(frozen=True)
class DeriveSettings:
    """Per-clinic figures that change derived values (countries define drinks differently)."""

    grams_per_standard_drink: float = DEFAULT_GRAMS_PER_STANDARD_DRINK
    heavy_day_grams: float = DEFAULT_HEAVY_DAY_GRAMS


@dataclass(frozen=True)
class FormField:
    """A plain description of one form field so the web layer can render any type.

    ``kind="rows"`` is a repeating group: ``fields`` describes one row and ``max_rows``
    caps how many there may be; row field names are relative to ``<name>.<index>.``.
    """

    name: str
    label: str
    kind: Kind
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    fields: list[FormField] = field(default_factory=list)
    max_rows: int | None = None
    low_label: str | None = None
    high_label: str | None = None


# --- field declarations --------------------------------------------------------------------


def _reject_bool(value: object) -> object:
    # bool is an int subclass; a tick box sent to a number field is a wrong type, not 1.
    if isinstance(value, bool):
        raise ValueError("Input should be a number")
    return value


Int = Annotated[int, BeforeValidator(_reject_bool)]
Decimal = Annotated[float, BeforeValidator(_reject_bool)]


def _meta(kind: Kind, required: bool, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "required": required, **extra}


def text(label: str, *, required: bool = False) -> Any:
    return Field(
        default=None, title=label, max_length=SHORT_TEXT, json_schema_extra=_meta("text", required)
    )


def textarea(label: str, *, required: bool = False) -> Any:
    return Field(
        default=None,
        title=label,
        max_length=LONG_TEXT,
        json_schema_extra=_meta("textarea", required),
    )


def integer(label: str, lo: int, hi: int, *, required: bool = False) -> Any:
    return Field(default=None, title=label, ge=lo, le=hi, json_schema_extra=_meta("int", required))


def decimal(label: str, lo: float, hi: float, *, required: bool = False) -> Any:
    return Field(
        default=None,
        title=label,
        ge=lo,
        le=hi,
        allow_inf_nan=False,
        json_schema_extra=_meta("decimal", required),
    )


def clock(label: str, *, required: bool = False) -> Any:
    return Field(default=None, title=label, json_schema_extra=_meta("time", required))


def day(label: str, *, required: bool = False) -> Any:
    return Field(default=None, title=label, json_schema_extra=_meta("date", required))


def flag(label: str, *, required: bool = False) -> Any:
    return Field(default=None, title=label, json_schema_extra=_meta("bool", required))


def choice(label: str, labels: Mapping[str, str], *, required: bool = False) -> Any:
    return Field(
        default=None,
        title=label,
        json_schema_extra=_meta("choice", required, choices=[[k, v] for k, v in labels.items()]),
    )


def rows(label: str, *, max_rows: int = MAX_ROWS, required: bool = True) -> Any:
    return Field(
        default_factory=list,
        title=label,
        max_length=max_rows,
        json_schema_extra=_meta("rows", required, max_rows=max_rows),
    )


# --- base classes ----------------------------------------------------------------------------


class _Form(BaseModel):
    """A form or a row of one: every field optional so drafts always validate."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        # Browsers send "" for an untouched input; that means "not filled in".
        if isinstance(data, Mapping):
            return {
                k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()
            }
        return data

    def submit_errors(self, prefix: str) -> list[FieldError]:
        """Cross-field problems that only matter once the patient submits."""
        return []


class Exercise(_Form):
    """Base of every exercise type."""

    type_name: ClassVar[str]

    def spec_errors(self, spec: ExerciseSpec) -> list[FieldError]:
        """Shape problems that depend on the exercise as placed in content."""
        return []

    def spec_required(self, spec: ExerciseSpec) -> list[FieldError]:
        """Answers a submission needs that depend on the content (one per question)."""
        return []

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        return {}

    @classmethod
    def form_fields(cls, spec: ExerciseSpec) -> list[FormField]:
        return _describe(cls, "")


def _meta_of(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _row_model(info: FieldInfo) -> type[_Form] | None:
    annotation = info.annotation
    if get_origin(annotation) is list:
        (inner,) = get_args(annotation)
        if isinstance(inner, type) and issubclass(inner, _Form):
            return inner
    return None


def _bounds(info: FieldInfo) -> tuple[float | None, float | None, int | None]:
    lo = hi = None
    max_length = None
    for constraint in info.metadata:
        lo = getattr(constraint, "ge", lo)
        hi = getattr(constraint, "le", hi)
        max_length = getattr(constraint, "max_length", max_length)
    return lo, hi, max_length


def _describe(model: type[_Form], prefix: str) -> list[FormField]:
    described: list[FormField] = []
    for name, info in model.model_fields.items():
        meta = _meta_of(info)
        kind: Kind = meta["kind"]
        lo, hi, max_length = _bounds(info)
        row = _row_model(info)
        described.append(
            FormField(
                name=f"{prefix}{name}",
                label=info.title or name,
                kind=kind,
                required=bool(meta.get("required")),
                min=lo,
                max=hi,
                max_length=None if kind == "rows" else max_length,
                choices=[(k, v) for k, v in meta.get("choices", [])],
                fields=_describe(row, "") if row is not None else [],
                max_rows=meta.get("max_rows"),
            )
        )
    return described


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list) and len(value) == 0)


def _required_errors(model: _Form, prefix: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        meta = _meta_of(info)
        if meta.get("required") and _is_empty(value):
            message = "Add at least one row." if meta.get("kind") == "rows" else "This is required."
            errors.append({"field": path, "message": message})
        if isinstance(value, list):
            for index, row in enumerate(value):
                if isinstance(row, _Form):
                    errors.extend(_required_errors(row, f"{path}.{index}."))
    errors.extend(model.submit_errors(prefix))
    return errors


def _err(path: str, message: str) -> FieldError:
    return {"field": path, "message": message}


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 1) if present else None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _duplicate_dates(entries: Sequence[Any], path: str) -> list[FieldError]:
    seen: set[dt.date] = set()
    errors: list[FieldError] = []
    for index, entry in enumerate(entries):
        when = entry.date
        if when is None:
            continue
        if when in seen:
            errors.append(_err(f"{path}.{index}.date", "This date is already in the diary."))
        seen.add(when)
    return errors


# --- free text and rating ---------------------------------------------------------------------


class FreeText(Exercise):
    """One text box per question written in content."""

    type_name = "free_text"
    answers: list[Annotated[str, Field(max_length=LONG_TEXT)] | None] = Field(
        default_factory=list, max_length=20
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_answers(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("answers"), list):
            answers = [None if isinstance(a, str) and not a.strip() else a for a in data["answers"]]
            return {**data, "answers": answers}
        return data

    def spec_errors(self, spec: ExerciseSpec) -> list[FieldError]:
        asked = len(spec.questions or [])
        if len(self.answers) > asked:
            return [_err("answers", f"There are only {asked} questions.")]
        return []

    def spec_required(self, spec: ExerciseSpec) -> list[FieldError]:
        questions = spec.questions or []
        padded = [*self.answers, *[None] * (len(questions) - len(self.answers))]
        return [
            _err(f"answers.{i}", "Please write an answer.")
            for i, answer in enumerate(padded)
            if not answer
        ]

    @classmethod
    def form_fields(cls, spec: ExerciseSpec) -> list[FormField]:
        return [
            FormField(
                name=f"answers.{i}", label=q, kind="textarea", required=True, max_length=LONG_TEXT
            )
            for i, q in enumerate(spec.questions or [])
        ]


class Rating(Exercise):
    """One slider per question; the range comes from the content's ``scale``."""

    type_name = "rating"
    ratings: list[Int | None] = Field(default_factory=list, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _blank_ratings(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("ratings"), list):
            ratings = [None if isinstance(r, str) and not r.strip() else r for r in data["ratings"]]
            return {**data, "ratings": ratings}
        return data

    @staticmethod
    def _range(spec: ExerciseSpec) -> tuple[int, int]:
        return (spec.scale.min, spec.scale.max) if spec.scale else (0, 10)

    def spec_errors(self, spec: ExerciseSpec) -> list[FieldError]:
        asked = len(spec.questions or [])
        if len(self.ratings) > asked:
            return [_err("ratings", f"There are only {asked} questions.")]
        lo, hi = self._range(spec)
        return [
            _err(f"ratings.{i}", f"Choose a value from {lo} to {hi}.")
            for i, value in enumerate(self.ratings)
            if value is not None and not lo <= value <= hi
        ]

    def spec_required(self, spec: ExerciseSpec) -> list[FieldError]:
        questions = spec.questions or []
        padded = [*self.ratings, *[None] * (len(questions) - len(self.ratings))]
        return [
            _err(f"ratings.{i}", "Please choose a value.")
            for i, value in enumerate(padded)
            if value is None
        ]

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        return {"mean": _mean(self.ratings)}

    @classmethod
    def form_fields(cls, spec: ExerciseSpec) -> list[FormField]:
        lo, hi = cls._range(spec)
        low = spec.scale.low if spec.scale else None
        high = spec.scale.high if spec.scale else None
        return [
            FormField(
                name=f"ratings.{i}",
                label=q,
                kind="int",
                required=True,
                min=lo,
                max=hi,
                low_label=low,
                high_label=high,
            )
            for i, q in enumerate(spec.questions or [])
        ]


# --- thought work -----------------------------------------------------------------------------


class EmotionRow(_Form):
    name: str | None = text("Emotion", required=True)
    intensity: Int | None = integer("How strong (0 to 100)", 0, 100, required=True)
    rerated: Int | None = integer("How strong now (0 to 100)", 0, 100)


class ThoughtRecord(Exercise):
    type_name = "thought_record"
    situation: str | None = textarea("Situation: when, where, who", required=True)
    emotions: list[EmotionRow] = rows("Emotions", max_rows=8)
    automatic_thought: str | None = textarea("The thought that went through my mind", required=True)
    thought_belief: Int | None = integer("How much I believed it (0 to 100)", 0, 100, required=True)
    evidence_for: str | None = textarea("What supports the thought")
    evidence_against: str | None = textarea("What does not fit the thought")
    balanced_thought: str | None = textarea("A more balanced thought", required=True)
    balanced_belief: Int | None = integer("How much I believe the new thought (0 to 100)", 0, 100)
    thought_belief_after: Int | None = integer(
        "How much I believe the first thought now (0 to 100)", 0, 100
    )

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        changes: list[tuple[str | None, int]] = [
            (row.name, row.rerated - row.intensity)
            for row in self.emotions
            if row.rerated is not None and row.intensity is not None
        ]
        belief_change = (
            self.thought_belief_after - self.thought_belief
            if self.thought_belief_after is not None and self.thought_belief is not None
            else None
        )
        return {
            "emotion_changes": [{"emotion": name, "change": delta} for name, delta in changes],
            "mean_emotion_change": _mean(delta for _, delta in changes),
            "belief_change": belief_change,
        }


class BehaviouralExperiment(Exercise):
    type_name = "behavioural_experiment"
    belief: str | None = textarea("The belief I want to test", required=True)
    belief_before: Int | None = integer("How much I believe it (0 to 100)", 0, 100, required=True)
    prediction: str | None = textarea("What I predict will happen", required=True)
    plan: str | None = textarea("My experiment: what, when, where", required=True)
    outcome: str | None = textarea("What actually happened", required=True)
    learned: str | None = textarea("What I learned")
    belief_after: Int | None = integer(
        "How much I believe it now (0 to 100)", 0, 100, required=True
    )

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        if self.belief_after is None or self.belief_before is None:
            return {"belief_change": None}
        return {"belief_change": self.belief_after - self.belief_before}


# --- activity and values -----------------------------------------------------------------------


class ActivityRow(_Form):
    date: dt.date | None = day("Day", required=True)
    time: dt.time | None = clock("Time")
    activity: str | None = text("Activity", required=True)
    life_area: str | None = text("What it serves (value or life area)")
    planned: bool | None = flag("Planned ahead")
    done: bool | None = flag("Done")
    pleasure: Int | None = integer("Pleasure (0 to 10)", 0, 10)
    mastery: Int | None = integer("Mastery (0 to 10)", 0, 10)
    mood: Int | None = integer("Mood (0 to 10)", 0, 10)


class ActivitySchedule(Exercise):
    type_name = "activity_schedule"
    rows: list[ActivityRow] = rows("Activities", max_rows=100)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        planned = [row for row in self.rows if row.planned]
        done = [row for row in planned if row.done]
        return {
            "planned": len(planned),
            "planned_done": len(done),
            "planned_done_percent": _percent(len(done), len(planned)),
            "mean_mood": _mean(row.mood for row in self.rows),
            "mean_pleasure": _mean(row.pleasure for row in self.rows),
            "mean_mastery": _mean(row.mastery for row in self.rows),
        }


class ValueRow(_Form):
    area: str | None = text("Life area", required=True)
    what_matters: str | None = textarea("What matters to me here", required=True)
    goal: str | None = text("One small goal")
    first_step: str | None = text("First step")
    by_when: dt.date | None = day("By when")


class ValuesGoals(Exercise):
    type_name = "values_goals"
    areas: list[ValueRow] = rows("Life areas", max_rows=12)


class SolutionRow(_Form):
    idea: str | None = text("Possible solution", required=True)
    pros: str | None = textarea("Pros")
    cons: str | None = textarea("Cons")


class ProblemSolving(Exercise):
    type_name = "problem_solving"
    problem: str | None = textarea("The problem, as specifically as I can put it", required=True)
    solutions: list[SolutionRow] = rows("Possible solutions", max_rows=15)
    chosen: str | None = text("The solution I chose", required=True)
    steps: str | None = textarea("Steps to carry it out", required=True)
    review: str | None = textarea("How it went")


class DecisionalBalance(Exercise):
    type_name = "decisional_balance"
    change_pros: str | None = textarea("Good things about changing", required=True)
    change_cons: str | None = textarea("Not-so-good things about changing", required=True)
    same_pros: str | None = textarea("Good things about staying the same", required=True)
    same_cons: str | None = textarea("Not-so-good things about staying the same", required=True)
    importance: Int | None = integer(
        "How important change is to me (0 to 10)", 0, 10, required=True
    )
    confidence: Int | None = integer(
        "How confident I am I can change (0 to 10)", 0, 10, required=True
    )


class WarningSignsPlan(Exercise):
    type_name = "warning_signs_plan"
    early_signs_low: str | None = textarea("Early signs that my mood is going down")
    early_signs_high: str | None = textarea("Early signs that my mood is going up")
    triggers: str | None = textarea("Situations that can set things off")
    what_i_do: str | None = textarea("What I will do when I notice the signs", required=True)
    supporters_do: str | None = textarea("What the people close to me can do")
    who_to_call: str | None = textarea("Who I contact, and how", required=True)

    def submit_errors(self, prefix: str) -> list[FieldError]:
        if not self.early_signs_low and not self.early_signs_high:
            return [_err(f"{prefix}early_signs_low", "Write down at least some early signs.")]
        return []


# --- exposure -----------------------------------------------------------------------------------


class HierarchyRow(_Form):
    situation: str | None = text("Situation", required=True)
    suds: Int | None = integer("Expected fear (SUDS 0 to 100)", 0, 100, required=True)
    avoided: bool | None = flag("I avoid this now")
    safety_behaviours: str | None = text("Safety behaviours or rituals to drop")


class ExposureHierarchy(Exercise):
    type_name = "exposure_hierarchy"
    rows: list[HierarchyRow] = rows("Steps", max_rows=30)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        indexed = sorted(enumerate(self.rows), key=lambda pair: (pair[1].suds or 0, pair[0]))
        return {
            "order": [index for index, _ in indexed],
            "steps": [{"situation": row.situation, "suds": row.suds} for _, row in indexed],
        }


class ExposureRow(_Form):
    date: dt.date | None = day("Date", required=True)
    situation: str | None = text("Situation or step", required=True)
    suds_before: Int | None = integer("Distress before (SUDS 0 to 100)", 0, 100, required=True)
    suds_peak: Int | None = integer("Distress at its highest (0 to 100)", 0, 100, required=True)
    suds_after: Int | None = integer("Distress at the end (0 to 100)", 0, 100, required=True)
    minutes: Int | None = integer("Minutes", 0, 600)
    dropped: str | None = text("Safety behaviours or rituals I dropped")
    learned: str | None = textarea("What I learned")

    def submit_errors(self, prefix: str) -> list[FieldError]:
        peak = self.suds_peak
        if peak is None:
            return []
        others = (self.suds_before, self.suds_after)
        if any(value is not None and value > peak for value in others):
            return [_err(f"{prefix}suds_peak", "The highest distress can't be below the others.")]
        return []


class ExposureLog(Exercise):
    type_name = "exposure_log"
    rows: list[ExposureRow] = rows("Exposures", max_rows=MAX_ROWS)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        entries: list[dict[str, int | None]] = []
        for row in self.rows:
            before, peak, after = row.suds_before, row.suds_peak, row.suds_after
            entries.append(
                {
                    "suds_change": after - before
                    if after is not None and before is not None
                    else None,
                    "peak_to_end": peak - after if peak is not None and after is not None else None,
                }
            )
        return {
            "entries": entries,
            "mean_suds_change": _mean(e["suds_change"] for e in entries),
            "total_minutes": sum(row.minutes or 0 for row in self.rows),
        }


# --- diaries ------------------------------------------------------------------------------------


class _NightFigures(NamedTuple):
    in_bed: int
    asleep: int


class SleepNight(_Form):
    date: dt.date | None = day("Night of (date I went to bed)", required=True)
    bed_time: dt.time | None = clock("Got into bed", required=True)
    lights_out: dt.time | None = clock("Tried to sleep (if later)")
    minutes_to_sleep: Int | None = integer("Minutes to fall asleep", 0, 720, required=True)
    times_woken: Int | None = integer("Times I woke up", 0, 50, required=True)
    minutes_awake: Int | None = integer("Minutes awake in the night", 0, 720, required=True)
    final_wake: dt.time | None = clock("Woke up for the last time", required=True)
    out_of_bed: dt.time | None = clock("Got out of bed", required=True)
    quality: Int | None = integer("Sleep quality (1 to 5)", 1, 5, required=True)

    def _check(self) -> _NightFigures | FieldError | None:
        """Time in bed and total sleep, the first inconsistency, or None while unfilled.

        Clock times are measured from bed time and wrap past midnight, so 23:30 to 06:45 is
        a night of 7 h 15 min. Time asleep = last waking - settling - minutes to fall asleep
        - minutes awake, which keeps lying in after the last waking out of total sleep.
        """
        if self.bed_time is None or self.out_of_bed is None or self.final_wake is None:
            return None
        bed = _clock_minutes(self.bed_time)
        in_bed = _since(bed, self.out_of_bed)
        final = _since(bed, self.final_wake)
        settle = _since(bed, self.lights_out) if self.lights_out is not None else 0
        if in_bed == 0:
            return _err("out_of_bed", "Getting up can't be the same time as going to bed.")
        if final > in_bed:
            return _err("final_wake", "The last waking must be before getting up.")
        if settle > final:
            return _err("lights_out", "Trying to sleep must come before the last waking.")
        if self.minutes_to_sleep is None or self.minutes_awake is None:
            return None
        asleep = final - settle - self.minutes_to_sleep - self.minutes_awake
        if asleep < 0:
            return _err(
                "minutes_awake", "Minutes to fall asleep and awake add up to more than the night."
            )
        return _NightFigures(in_bed, asleep)

    def figures(self) -> _NightFigures | None:
        """Time in bed and total sleep in minutes, or None if the night can't be computed."""
        result = self._check()
        return result if isinstance(result, _NightFigures) else None

    def submit_errors(self, prefix: str) -> list[FieldError]:
        result = self._check()
        if isinstance(result, dict):
            return [_err(f"{prefix}{result['field']}", result["message"])]
        return []


def _clock_minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute


def _since(start: int, value: dt.time) -> int:
    """Minutes from ``start`` to ``value``, wrapping past midnight (a night is under 24 h)."""
    return (_clock_minutes(value) - start) % (24 * 60)


class SleepDiary(Exercise):
    type_name = "sleep_diary"
    nights: list[SleepNight] = rows("Nights", max_rows=31)

    def submit_errors(self, prefix: str) -> list[FieldError]:
        return _duplicate_dates(self.nights, f"{prefix}nights")

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        nights: list[dict[str, Any]] = []
        for night in self.nights:
            figures = night.figures()
            if figures is None:
                continue
            in_bed, asleep = figures
            nights.append(
                {
                    "date": night.date.isoformat() if night.date else None,
                    "time_in_bed_min": in_bed,
                    "total_sleep_min": asleep,
                    "sleep_efficiency": round(100 * asleep / in_bed, 1),
                }
            )
        return {
            "nights": nights,
            "nights_counted": len(nights),
            "mean_time_in_bed_min": _mean(n["time_in_bed_min"] for n in nights),
            "mean_total_sleep_min": _mean(n["total_sleep_min"] for n in nights),
            "mean_sleep_efficiency": _mean(n["sleep_efficiency"] for n in nights),
            "mean_quality": _mean(night.quality for night in self.nights),
        }


class Drink(_Form):
    kind: str | None = text("Drink")
    volume_ml: Int | None = integer("Volume (ml)", 1, 3000, required=True)
    abv: Decimal | None = decimal("Strength (% alcohol)", 0, 100, required=True)
    count: Int | None = integer("How many (1 if empty)", 1, 50)

    def grams(self) -> float:
        if self.volume_ml is None or self.abv is None:
            return 0.0
        return (self.count or 1) * self.volume_ml * self.abv / 100 * ETHANOL_G_PER_ML


class DrinkingDay(_Form):
    date: dt.date | None = day("Date", required=True)
    drinks: list[Drink] = rows("Drinks (none is fine)", max_rows=30, required=False)
    situation: str | None = textarea("Where, with whom, how I felt")
    urge: Int | None = integer("Urge to drink (0 to 10)", 0, 10)


class DrinkingDiary(Exercise):
    type_name = "drinking_diary"
    days: list[DrinkingDay] = rows("Days", max_rows=31)

    def submit_errors(self, prefix: str) -> list[FieldError]:
        return _duplicate_dates(self.days, f"{prefix}days")

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        per_day: list[dict[str, Any]] = []
        total_grams = 0.0
        for entry in self.days:
            grams = sum((drink.grams() for drink in entry.drinks), 0.0)
            total_grams += grams
            per_day.append(
                {
                    "date": entry.date.isoformat() if entry.date else None,
                    "grams": round(grams, 1),
                    "standard_drinks": round(grams / settings.grams_per_standard_drink, 1),
                    "heavy": grams >= settings.heavy_day_grams,
                }
            )
        return {
            "days": per_day,
            "total_grams": round(total_grams, 1),
            "total_standard_drinks": round(total_grams / settings.grams_per_standard_drink, 1),
            "drinking_days": sum(1 for d in per_day if d["grams"] > 0),
            "alcohol_free_days": sum(1 for d in per_day if d["grams"] == 0),
            "heavy_drinking_days": sum(1 for d in per_day if d["heavy"]),
            "mean_urge": _mean(entry.urge for entry in self.days),
            "grams_per_standard_drink": settings.grams_per_standard_drink,
            "heavy_day_grams": settings.heavy_day_grams,
        }


_EATING_KINDS = {"meal": "Meal", "snack": "Snack", "other": "Other eating"}
_COMPENSATION = {
    "none": "None",
    "vomiting": "Made myself sick",
    "laxatives": "Laxatives",
    "exercise": "Exercise to make up for it",
}


class EatingEntry(_Form):
    date: dt.date | None = day("Date", required=True)
    time: dt.time | None = clock("Time", required=True)
    what_eaten: str | None = textarea("What I ate and drank", required=True)
    kind: Literal["meal", "snack", "other"] | None = choice("Meal or snack", _EATING_KINDS)
    planned: bool | None = flag("Part of my eating plan")
    binge: bool | None = flag("Felt out of control / a binge")
    compensation: Literal["none", "vomiting", "laxatives", "exercise"] | None = choice(
        "Anything done afterwards", _COMPENSATION
    )
    context: str | None = textarea("Situation, thoughts and feelings")


class EatingDiary(Exercise):
    type_name = "eating_diary"
    entries: list[EatingEntry] = rows("Eating", max_rows=100)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        def count(predicate: Callable[[EatingEntry], bool]) -> int:
            return sum(1 for entry in self.entries if predicate(entry))

        return {
            "entries": len(self.entries),
            "days_recorded": len({e.date for e in self.entries if e.date is not None}),
            "planned_kept": count(lambda e: bool(e.planned) and e.kind in ("meal", "snack")),
            "binge_count": count(lambda e: bool(e.binge)),
            "compensation_count": count(lambda e: e.compensation not in (None, "none")),
            "vomiting_count": count(lambda e: e.compensation == "vomiting"),
            "laxative_count": count(lambda e: e.compensation == "laxatives"),
            "exercise_count": count(lambda e: e.compensation == "exercise"),
            "purge_count": count(lambda e: e.compensation in ("vomiting", "laxatives")),
        }


_MEDICATION = {
    "taken": "Taken as prescribed",
    "partly": "Partly taken",
    "missed": "Not taken",
    "none": "No medication",
}


class MoodDay(_Form):
    date: dt.date | None = day("Date", required=True)
    mood: Int | None = integer("Mood (-5 very low to +5 very high)", -5, 5, required=True)
    anxiety: Int | None = integer("Anxiety (0 to 10)", 0, 10)
    irritability: Int | None = integer("Irritability (0 to 10)", 0, 10)
    sleep_hours: Decimal | None = decimal("Hours slept", 0, 24)
    medication: Literal["taken", "partly", "missed", "none"] | None = choice(
        "Medication", _MEDICATION
    )
    notes: str | None = textarea("Notes")


class MoodChart(Exercise):
    type_name = "mood_chart"
    days: list[MoodDay] = rows("Days", max_rows=62)

    def submit_errors(self, prefix: str) -> list[FieldError]:
        return _duplicate_dates(self.days, f"{prefix}days")

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        moods = [d.mood for d in self.days if d.mood is not None]
        return {
            "days": len(self.days),
            "mean_mood": _mean(moods),
            "mood_min": min(moods) if moods else None,
            "mood_max": max(moods) if moods else None,
            "mood_range": max(moods) - min(moods) if moods else None,
            "mean_anxiety": _mean(d.anxiety for d in self.days),
            "mean_irritability": _mean(d.irritability for d in self.days),
            "mean_sleep_hours": _mean(d.sleep_hours for d in self.days),
            "short_sleep_nights": sum(
                1
                for d in self.days
                if d.sleep_hours is not None and d.sleep_hours < SHORT_SLEEP_HOURS
            ),
            "medication_missed_days": sum(1 for d in self.days if d.medication == "missed"),
        }


_WORRY_KINDS = {
    "practical": "Practical (I can act on it)",
    "hypothetical": "Hypothetical (what if…)",
}


class WorryEntry(_Form):
    date: dt.date | None = day("Date")
    time: dt.time | None = clock("Time")
    worry: str | None = textarea("The worry", required=True)
    kind: Literal["practical", "hypothetical"] | None = choice("Kind of worry", _WORRY_KINDS)
    anxiety: Int | None = integer("Anxiety (0 to 10)", 0, 10)
    postponed: bool | None = flag("Postponed to worry time")
    still_relevant: bool | None = flag("Still mattered at worry time")


class WorryLog(Exercise):
    type_name = "worry_log"
    entries: list[WorryEntry] = rows("Worries", max_rows=100)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        postponed = [e for e in self.entries if e.postponed]
        relevant = [e for e in postponed if e.still_relevant]
        return {
            "entries": len(self.entries),
            "postponed": len(postponed),
            "postponed_percent": _percent(len(postponed), len(self.entries)),
            "still_relevant_percent": _percent(len(relevant), len(postponed)),
            "practical": sum(1 for e in self.entries if e.kind == "practical"),
            "hypothetical": sum(1 for e in self.entries if e.kind == "hypothetical"),
            "mean_anxiety": _mean(e.anxiety for e in self.entries),
        }


class RelaxationSession(_Form):
    date: dt.date | None = day("Date", required=True)
    method: str | None = text("Method or stage")
    minutes: Int | None = integer("Minutes", 1, 180)
    tension_before: Int | None = integer("Tension before (0 to 10)", 0, 10, required=True)
    tension_after: Int | None = integer("Tension after (0 to 10)", 0, 10, required=True)


class RelaxationLog(Exercise):
    type_name = "relaxation_log"
    sessions: list[RelaxationSession] = rows("Practice sessions", max_rows=MAX_ROWS)

    def derive(self, settings: DeriveSettings) -> dict[str, Any]:
        drops = [
            s.tension_before - s.tension_after
            for s in self.sessions
            if s.tension_before is not None and s.tension_after is not None
        ]
        return {
            "sessions": len(self.sessions),
            "total_minutes": sum(s.minutes or 0 for s in self.sessions),
            "mean_tension_drop": _mean(drops),
        }


# --- registry and entry points ------------------------------------------------------------------

_ALL: tuple[type[Exercise], ...] = (
    FreeText,
    Rating,
    ThoughtRecord,
    ActivitySchedule,
    ExposureHierarchy,
    ExposureLog,
    SleepDiary,
    DrinkingDiary,
    EatingDiary,
    MoodChart,
    WarningSignsPlan,
    WorryLog,
    BehaviouralExperiment,
    ValuesGoals,
    ProblemSolving,
    RelaxationLog,
    DecisionalBalance,
)

EXERCISE_TYPES: dict[str, type[Exercise]] = {cls.type_name: cls for cls in _ALL}
"""Every exercise type content may name, mapped to its form model."""


def _model_for(type_name: str) -> type[Exercise]:
    try:
        return EXERCISE_TYPES[type_name]
    except KeyError:
        raise UnknownExerciseTypeError(type_name) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _parse(type_name: str, data: object, spec: ExerciseSpec) -> Exercise:
    model = _model_for(type_name)
    if not isinstance(data, Mapping):
        raise ExerciseValidationError([_err("", "Expected a form with named fields.")])
    try:
        form = model.model_validate(data)
    except ValidationError as exc:
        raise ExerciseValidationError(
            [
                _err(_field_path(e["loc"]), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None
    problems = form.spec_errors(spec)
    if problems:
        raise ExerciseValidationError(problems)
    return form


def validate_draft(type_name: str, data: object, spec: ExerciseSpec) -> dict[str, Any]:
    """Check a partly filled form for types and ranges only; return it normalised for storage."""
    return _parse(type_name, data, spec).model_dump(mode="json")


def validate_submission(
    type_name: str,
    data: object,
    spec: ExerciseSpec,
    *,
    grams_per_standard_drink: float = DEFAULT_GRAMS_PER_STANDARD_DRINK,
    heavy_day_grams: float = DEFAULT_HEAVY_DAY_GRAMS,
) -> SubmissionResult:
    """Check a finished form and compute its derived values, or raise with every bad field."""
    if not (grams_per_standard_drink > 0 and math.isfinite(grams_per_standard_drink)):
        raise ValueError("grams_per_standard_drink must be a positive number")
    form = _parse(type_name, data, spec)
    errors = form.spec_required(spec) + _required_errors(form, "")
    if errors:
        raise ExerciseValidationError(errors)
    settings = DeriveSettings(grams_per_standard_drink, heavy_day_grams)
    return SubmissionResult(data=form.model_dump(mode="json"), derived=form.derive(settings))


def field_schema(type_name: str, spec: ExerciseSpec) -> list[FormField]:
    """Describe the form of ``type_name`` as placed by ``spec`` for generic rendering."""
    return _model_for(type_name).form_fields(spec)
