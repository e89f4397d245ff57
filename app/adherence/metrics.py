"""Pure arithmetic for reports: survival curve, retention curve, rates and norms.

The database hands over small grouped counts; everything here works on those counts, so it
is cheap whatever the clinic's size and easy to check by hand in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NORM_MINUTES_LOW = 10.0
NORM_MINUTES_HIGH = 20.0
"""Therapist minutes per patient-week in routine guided iCBT (Titov et al. 2018)."""


@dataclass(frozen=True)
class SurvivalPoint:
    week: int
    at_risk: int
    dropped: int
    share_active: float  # still in treatment at the *end* of this week


def kaplan_meier(
    counts: Mapping[tuple[bool, int], int], *, max_week: int | None = None
) -> list[SurvivalPoint]:
    """Share still in treatment by week, counting completers and ongoing ones as censored.

    ``counts[(dropped, week)]`` is how many enrollments dropped out in that week (dropped
    True; week = week of their last activity) or were last observed in it (dropped False).
    Week 0 is the first seven days. S(w) = product over u <= w of (1 - d_u / n_u), where
    n_u is everyone observed at least until week u.
    """
    if not counts:
        return []
    last = max(week for _, week in counts)
    if max_week is not None:
        last = min(last, max_week)
    total = sum(counts.values())
    at_risk = total
    share = 1.0
    points: list[SurvivalPoint] = []
    for week in range(0, last + 1):
        dropped = counts.get((True, week), 0)
        censored = counts.get((False, week), 0)
        if at_risk > 0:
            share *= 1 - dropped / at_risk
        points.append(SurvivalPoint(week, at_risk, dropped, round(share, 4)))
        at_risk -= dropped + censored
    return points


@dataclass(frozen=True)
class RetentionPoint:
    module: int
    reached: int
    share: float


def retention_curve(completed_counts: Mapping[int, int], *, modules: int) -> list[RetentionPoint]:
    """How many completed at least module k, for k = 1..modules, out of everyone started.

    ``completed_counts[n]`` is how many enrollments completed exactly n modules.
    """
    started = sum(completed_counts.values())
    points = []
    for k in range(1, modules + 1):
        reached = sum(n_people for n, n_people in completed_counts.items() if n >= k)
        points.append(RetentionPoint(k, reached, round(reached / started, 4) if started else 0.0))
    return points


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def per_week(amount: float, patient_weeks: float) -> float | None:
    return round(amount / patient_weeks, 2) if patient_weeks > 0 else None


def norm_verdict(minutes_per_week: float | None) -> str | None:
    """Where estimated therapist time sits against the 10-20 minute routine-care norm."""
    if minutes_per_week is None:
        return None
    if minutes_per_week < NORM_MINUTES_LOW:
        return "below"
    if minutes_per_week > NORM_MINUTES_HIGH:
        return "above"
    return "within"


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def median_week(counts: Mapping[int, int]) -> float | None:
    """The median of a week -> count histogram."""
    return median(week for week, n in sorted(counts.items()) for _ in range(n))
