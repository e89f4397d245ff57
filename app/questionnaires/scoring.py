"""Questionnaire scoring as pure functions over a loaded :class:`Instrument`.

Raw answers are what a patient chose (option values); totals are always computed here,
never trusted from a client, so every score in the database follows the shipped rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from app.content.schemas import Instrument, InstrumentItem, RiskLevel

Change = Literal["improved", "deteriorated", "no_reliable_change"]

_LEVEL_ORDER: dict[RiskLevel, int] = {"info": 0, "warning": 1, "urgent": 2}


class AnswerError(ValueError):
    """The answers do not fit the instrument (missing items, unknown items, bad values)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class RiskFlag:
    level: RiskLevel
    reason: str
    item: str | None
    value: int


@dataclass(frozen=True)
class Score:
    total: int
    band_label: str
    risk: list[RiskFlag] = field(default_factory=list)
    subscales: dict[str, int] = field(default_factory=dict)

    @property
    def highest_risk(self) -> RiskLevel | None:
        """The most serious level among the flags, for triage."""
        if not self.risk:
            return None
        return max((flag.level for flag in self.risk), key=_LEVEL_ORDER.__getitem__)


def item_value(instrument: Instrument, item: InstrumentItem, answer: int) -> int:
    """The points an answer adds to the total (reverse-scored items are mirrored)."""
    if not item.reverse:
        return answer
    values = [option.value for option in instrument.item_options(item)]
    return min(values) + max(values) - answer


def score_range(instrument: Instrument) -> tuple[int, int]:
    """Lowest and highest total the items can produce."""
    low = high = 0
    for item in instrument.items:
        points = [item_value(instrument, item, o.value) for o in instrument.item_options(item)]
        low += min(points)
        high += max(points)
    return low, high


def check_answers(instrument: Instrument, answers: Mapping[str, object]) -> list[str]:
    """Every reason ``answers`` can't be scored; empty when they can."""
    problems: list[str] = []
    known = {item.id for item in instrument.items}
    problems.extend(f"unknown item {key!r}" for key in answers if key not in known)
    for item in instrument.items:
        if item.id not in answers:
            problems.append(f"{item.id}: no answer")
            continue
        value = answers[item.id]
        allowed = [option.value for option in instrument.item_options(item)]
        # bool is an int subclass; True is not a questionnaire answer.
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            problems.append(f"{item.id}: {value!r} is not one of {allowed}")
    return problems


def score(instrument: Instrument, answers: Mapping[str, int]) -> Score:
    """Total, severity band, risk flags and subscale sums for one complete set of answers."""
    problems = check_answers(instrument, answers)
    if problems:
        raise AnswerError(problems)
    points = {item.id: item_value(instrument, item, answers[item.id]) for item in instrument.items}
    total = sum(points.values())
    band = instrument.band_for(total)
    if band is None:
        # Unreachable for content that passed the checker (bands cover min..max).
        raise AnswerError([f"total {total} falls in no band of {instrument.code}"])
    flags: list[RiskFlag] = []
    for rule in instrument.risk:
        value = total if rule.item is None else answers[rule.item]
        if value >= rule.min_value:
            flags.append(RiskFlag(rule.level, rule.reason, rule.item, value))
    subscales = {
        name: sum(points[item_id] for item_id in item_ids)
        for name, item_ids in instrument.subscales.items()
    }
    return Score(total=total, band_label=band.label, risk=flags, subscales=subscales)


def reliable_change(instrument: Instrument, baseline_total: float, latest_total: float) -> Change:
    """Compare two totals against the instrument's reliable-change threshold.

    ``direction`` decides which way is better: for most instruments a fall is an
    improvement, for the Sleep Condition Indicator a rise is.
    """
    for name, total in (("baseline_total", baseline_total), ("latest_total", latest_total)):
        if not instrument.scoring.min <= total <= instrument.scoring.max:
            raise ValueError(
                f"{name} {total} is outside {instrument.scoring.min}..{instrument.scoring.max}"
            )
    gain = latest_total - baseline_total
    if instrument.direction == "lower_is_better":
        gain = -gain
    if gain >= instrument.reliable_change:
        return "improved"
    if -gain >= instrument.reliable_change:
        return "deteriorated"
    return "no_reliable_change"
