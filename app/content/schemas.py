"""Typed shape of everything under ``modules/``.

The ``*File`` models mirror the YAML a writer types (``extra="forbid"`` so a typo in a key
is reported instead of silently ignored); the other models are what the loader hands to
the rest of the service after cross-file checks have passed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
"""Lowercase words joined by single dashes: program slugs and exercise ids."""

ITEM_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
INSTRUMENT_CODE_PATTERN = r"^[a-z][a-z0-9_]*$"

PROGRAM_SLUGS: tuple[str, ...] = (
    "depression",
    "gad",
    "ocd",
    "bipolar",
    "social-anxiety",
    "bulimia",
    "alcohol",
    "panic",
    "insomnia",
)
"""The nine programs, in the order the service lists them."""

RiskLevel = Literal["info", "warning", "urgent"]
Direction = Literal["lower_is_better", "higher_is_better"]
Wording = Literal["summary", "official"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- programs -------------------------------------------------------------------------------


class Pacing(_Strict):
    """How modules open: one after the other, optionally behind the therapist."""

    unlock: Literal["sequential", "all"] = "sequential"
    therapist_gate: bool = False
    min_days_between_modules: int = Field(default=0, ge=0, le=60)


class ProgramInstruments(_Strict):
    """Questionnaire codes asked every week and those asked only at start and end."""

    weekly: list[str] = Field(default_factory=list)
    baseline_and_end: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_double_booking(self) -> ProgramInstruments:
        both = set(self.weekly) & set(self.baseline_and_end)
        if both:
            raise ValueError(f"listed both weekly and baseline_and_end: {', '.join(sorted(both))}")
        for name, codes in (("weekly", self.weekly), ("baseline_and_end", self.baseline_and_end)):
            if len(set(codes)) != len(codes):
                raise ValueError(f"{name} lists an instrument twice")
        return self

    @property
    def all_codes(self) -> list[str]:
        return [*self.weekly, *self.baseline_and_end]


class _ProgramBase(_Strict):
    slug: str = Field(pattern=SLUG_PATTERN)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    title: str = Field(min_length=1, max_length=120)
    summary: str = Field(min_length=1, max_length=600)
    weeks: int = Field(ge=1, le=52)
    pacing: Pacing = Field(default_factory=Pacing)
    instruments: ProgramInstruments = Field(default_factory=ProgramInstruments)


class ProgramFile(_ProgramBase):
    """``program.yaml`` as written: ``modules`` lists file stems in order."""

    modules: list[str] = Field(min_length=1)


# --- modules --------------------------------------------------------------------------------


class RatingScale(_Strict):
    """Range and end labels of the sliders of a ``rating`` exercise."""

    min: int = Field(default=0, ge=-100, le=100)
    max: int = Field(default=10, ge=-100, le=100)
    low: str | None = Field(default=None, max_length=80)
    high: str | None = Field(default=None, max_length=80)

    @model_validator(mode="after")
    def _ordered(self) -> RatingScale:
        if self.min >= self.max:
            raise ValueError("scale min must be below max")
        return self


class ExerciseSpec(_Strict):
    """One exercise as placed in a module; fields and validation come from its type."""

    id: str = Field(pattern=SLUG_PATTERN, max_length=60)
    type: str
    title: str = Field(min_length=1, max_length=120)
    instructions: str = Field(min_length=1, max_length=4000)
    homework: bool = False
    questions: list[str] | None = Field(default=None, min_length=1, max_length=20)
    scale: RatingScale | None = None

    @field_validator("questions")
    @classmethod
    def _questions_not_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not q.strip() for q in value):
            raise ValueError("questions must not be blank")
        return value


class ModuleFrontMatter(_Strict):
    """The YAML block at the top of a module file."""

    title: str = Field(min_length=1, max_length=120)
    minutes: int = Field(ge=1, le=240)
    summary: str = Field(min_length=1, max_length=600)
    exercises: list[ExerciseSpec] = Field(default_factory=list)


class PageSegment(_Strict):
    """Rendered HTML followed, optionally, by the place where an exercise form goes."""

    html: str
    exercise_id: str | None = None


class Page(_Strict):
    """One page of a module: a level-1 heading and everything up to the next one.

    ``segments`` is the page body (heading excluded) cut at each ``[[exercise:id]]``
    marker, so a template renders ``segment.html`` and then the form for
    ``segment.exercise_id`` when it is set. ``html`` is the same body with the markers
    left out, for places that show no forms.
    """

    number: int = Field(ge=1)
    title: str
    segments: list[PageSegment]
    words: int = Field(ge=0)
    line: int = Field(ge=1)

    @property
    def html(self) -> str:
        return "".join(segment.html for segment in self.segments)

    @property
    def exercise_ids(self) -> list[str]:
        return [s.exercise_id for s in self.segments if s.exercise_id is not None]


class Module(_Strict):
    """A parsed module: front matter, pages and the exercises in page order."""

    key: str
    number: int
    title: str
    minutes: int
    summary: str
    exercises: list[ExerciseSpec]
    pages: list[Page]
    words: int

    def exercise(self, exercise_id: str) -> ExerciseSpec:
        for spec in self.exercises:
            if spec.id == exercise_id:
                return spec
        raise KeyError(exercise_id)

    @property
    def homework(self) -> list[ExerciseSpec]:
        return [spec for spec in self.exercises if spec.homework]

    @property
    def unplaced_exercises(self) -> list[ExerciseSpec]:
        """Exercises with no marker: the page template shows them after the last page."""
        placed = {eid for page in self.pages for eid in page.exercise_ids}
        return [spec for spec in self.exercises if spec.id not in placed]


class Program(_ProgramBase):
    """A loaded program with its modules, keyed by file stem in the listed order."""

    modules: dict[str, Module]

    @property
    def module_keys(self) -> list[str]:
        return list(self.modules)


# --- instruments ----------------------------------------------------------------------------


class Option(_Strict):
    value: int = Field(ge=0, le=100)
    label: str = Field(min_length=1, max_length=200)


class InstrumentItem(_Strict):
    """One question; ``options`` overrides the instrument's shared options."""

    id: str = Field(pattern=ITEM_ID_PATTERN, max_length=20)
    text: str = Field(min_length=1, max_length=500)
    options: list[Option] | None = Field(default=None, min_length=2)
    reverse: bool = False


class Scoring(_Strict):
    method: Literal["sum"] = "sum"
    min: int
    max: int


class Band(_Strict):
    """An inclusive range of totals with a label shown to therapists."""

    min: int
    max: int
    label: str = Field(min_length=1, max_length=80)


class RiskRule(_Strict):
    """Raise a flag when an item's answer (or, with no ``item``, the total) reaches a value.

    Item rules compare the answered option value as given, before any reverse scoring,
    because the clinical meaning sits with the option the patient chose.
    """

    item: str | None = None
    min_value: int
    level: RiskLevel
    reason: str = Field(min_length=1, max_length=200)


class Instrument(_Strict):
    """A questionnaire: items, options, scoring, bands, reliable change and risk rules."""

    code: str = Field(pattern=INSTRUMENT_CODE_PATTERN, max_length=30)
    title: str = Field(min_length=1, max_length=120)
    wording: Wording = "summary"
    source: str = Field(min_length=1)
    recall: str | None = None
    notes: str | None = None
    direction: Direction = "lower_is_better"
    options: list[Option] | None = Field(default=None, min_length=2)
    items: list[InstrumentItem] = Field(min_length=1)
    scoring: Scoring
    bands: list[Band] = Field(min_length=1)
    reliable_change: float = Field(gt=0)
    risk: list[RiskRule] = Field(default_factory=list)
    subscales: dict[str, list[str]] = Field(default_factory=dict)

    def item(self, item_id: str) -> InstrumentItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def item_options(self, item: InstrumentItem) -> list[Option]:
        """The options that apply to ``item`` (its own, else the shared ones)."""
        options = item.options if item.options is not None else self.options
        return list(options or [])

    def band_for(self, total: int) -> Band | None:
        for band in self.bands:
            if band.min <= total <= band.max:
                return band
        return None
