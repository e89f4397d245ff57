"""Which modules on a patient's path are open, and in plain words why the others are not.

Pure functions over plain values, so the unlock rules are unit-tested without a database.
Only a therapist's explicit "open now" is stored (``ModuleProgress.unlocked_at``); every
other unlock is worked out here on each read from completions and the effective pacing.
That keeps a later pacing change (say, turning the therapist gate off) honest at once,
instead of leaving stale unlock dates behind in the table.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from app.content.schemas import Pacing

UnlockMode = Literal["sequential", "all"]


class Status(enum.StrEnum):
    LOCKED = "locked"
    AVAILABLE = "available"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class LockReason(enum.StrEnum):
    NOT_STARTED = "not_started"  # the program itself has not started (invitation not accepted)
    PREVIOUS = "previous"  # waits for the module before it to be completed
    THERAPIST_GATE = "therapist_gate"  # waits for the therapist to open it
    DATE = "date"  # the minimum days between modules have not passed yet
    HIDDEN = "hidden"  # the therapist took it off the path (patients never see these)


@dataclass(frozen=True)
class EffectivePacing:
    """The program's pacing with the therapist's per-patient changes applied."""

    unlock: UnlockMode
    therapist_gate: bool
    min_days_between_modules: int
    gate_overridden: bool = False
    days_overridden: bool = False


def effective_pacing(
    program: Pacing,
    *,
    therapist_gate: bool | None = None,
    min_days_between_modules: int | None = None,
) -> EffectivePacing:
    """Override values of None keep the program's own setting."""
    return EffectivePacing(
        unlock=program.unlock,
        therapist_gate=program.therapist_gate if therapist_gate is None else therapist_gate,
        min_days_between_modules=(
            program.min_days_between_modules
            if min_days_between_modules is None
            else min_days_between_modules
        ),
        gate_overridden=therapist_gate is not None,
        days_overridden=min_days_between_modules is not None,
    )


@dataclass(frozen=True)
class ModuleState:
    """What the database knows about one module on the path, in path order."""

    hidden: bool = False
    opened_by_therapist: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    """A module's status; for locked ones, why, and what it waits for."""

    status: Status
    number: int | None  # place among the modules the patient sees (1-based); None if hidden
    reason: LockReason | None = None
    waits_for: int | None = None  # number of the module whose completion opens this one
    opens_on: date | None = None  # first UTC day it opens, for LockReason.DATE

    @property
    def is_open(self) -> bool:
        return self.status is not Status.LOCKED


def _own_status(state: ModuleState) -> Status | None:
    if state.completed_at is not None:
        return Status.COMPLETED
    if state.started_at is not None:
        return Status.IN_PROGRESS
    return None


def opens_on(completed_at: datetime, min_days: int) -> date:
    """Minimum days are counted in whole UTC days from the day the previous module was completed."""
    return completed_at.date() + timedelta(days=min_days)


def evaluate(
    states: Sequence[ModuleState],
    pacing: EffectivePacing,
    *,
    activated_at: datetime | None,
    now: datetime,
) -> list[Verdict]:
    """One verdict per state, in the same order.

    Rules, first match wins for a visible module:

    1. completed or started stays so (work begun is never locked away again);
    2. before the program starts everything else is locked;
    3. a module the therapist opened is open;
    4. with ``unlock: all`` everything is open, and the first module always is;
    5. otherwise it waits for the previous visible module to be completed, then for the
       therapist (gate), then for the minimum days since that completion.

    Hidden modules are skipped when finding "the previous module", so hiding one never
    strands the patient.
    """
    verdicts: list[Verdict] = []
    previous: ModuleState | None = None
    number = 0
    for state in states:
        own = _own_status(state)
        if state.hidden:
            verdicts.append(
                Verdict(own, None) if own else Verdict(Status.LOCKED, None, LockReason.HIDDEN)
            )
            continue
        number += 1
        verdicts.append(_visible_verdict(state, own, previous, number, pacing, activated_at, now))
        previous = state
    return verdicts


def _visible_verdict(
    state: ModuleState,
    own: Status | None,
    previous: ModuleState | None,
    number: int,
    pacing: EffectivePacing,
    activated_at: datetime | None,
    now: datetime,
) -> Verdict:
    if own is not None:
        return Verdict(own, number)
    if activated_at is None:
        return Verdict(Status.LOCKED, number, LockReason.NOT_STARTED)
    if state.opened_by_therapist or pacing.unlock == "all" or previous is None:
        return Verdict(Status.AVAILABLE, number)
    if previous.completed_at is None:
        return Verdict(Status.LOCKED, number, LockReason.PREVIOUS, waits_for=number - 1)
    if pacing.therapist_gate:
        return Verdict(Status.LOCKED, number, LockReason.THERAPIST_GATE)
    if pacing.min_days_between_modules > 0:
        first_day = opens_on(previous.completed_at, pacing.min_days_between_modules)
        if now.date() < first_day:
            return Verdict(Status.LOCKED, number, LockReason.DATE, opens_on=first_day)
    return Verdict(Status.AVAILABLE, number)


def _day(value: date) -> str:
    return f"{value.day} {value.strftime('%B')}"


def describe_lock(verdict: Verdict, *, for_staff: bool = False) -> str | None:
    """Why a module is locked, in words for the patient (or, ``for_staff``, about them)."""
    if verdict.status is not Status.LOCKED or verdict.reason is None:
        return None
    if verdict.reason is LockReason.PREVIOUS:
        if for_staff:
            return f"Opens when module {verdict.waits_for} is completed"
        return f"Opens when you complete module {verdict.waits_for}"
    if verdict.reason is LockReason.DATE and verdict.opens_on is not None:
        return f"Opens on {_day(verdict.opens_on)}"
    if verdict.reason is LockReason.THERAPIST_GATE:
        return (
            "Waits for the therapist to open it"
            if for_staff
            else "Your therapist opens this module"
        )
    if verdict.reason is LockReason.NOT_STARTED:
        return "Opens when the program starts" if for_staff else "Opens when your program starts"
    return "Hidden from the patient"


def next_up(verdicts: Sequence[Verdict]) -> int | None:
    """Index of the module to work on now: the first visible open one not yet completed.

    In-progress modules come before merely available ones, so "continue where you left
    off" wins over a module opened early further down the path.
    """
    open_ones = [
        (0 if v.status is Status.IN_PROGRESS else 1, i)
        for i, v in enumerate(verdicts)
        if v.number is not None and v.status in (Status.IN_PROGRESS, Status.AVAILABLE)
    ]
    return min(open_ones)[1] if open_ones else None


def waiting(verdicts: Sequence[Verdict]) -> int | None:
    """Index of the first visible locked module: what the patient is waiting for next."""
    for index, verdict in enumerate(verdicts):
        if verdict.number is not None and verdict.status is Status.LOCKED:
            return index
    return None
