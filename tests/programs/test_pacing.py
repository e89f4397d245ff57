"""Unlock and pacing rules, as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.content.schemas import Pacing
from app.programs.pacing import (
    EffectivePacing,
    LockReason,
    ModuleState,
    Status,
    describe_lock,
    effective_pacing,
    evaluate,
    next_up,
    waiting,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEQUENTIAL = EffectivePacing("sequential", therapist_gate=False, min_days_between_modules=0)


def statuses(states: list[ModuleState], pacing: EffectivePacing = SEQUENTIAL, **kw) -> list[str]:
    now = kw.pop("now", START)
    activated = kw.pop("activated_at", START)
    return [v.status.value for v in evaluate(states, pacing, activated_at=activated, now=now)]


def done(days_ago: int = 0, *, now: datetime = START) -> ModuleState:
    return ModuleState(
        started_at=now - timedelta(days=days_ago), completed_at=now - timedelta(days=days_ago)
    )


class TestSequential:
    def test_first_module_is_available_at_activation_and_the_rest_wait(self) -> None:
        verdicts = evaluate([ModuleState()] * 3, SEQUENTIAL, activated_at=START, now=START)
        assert [v.status for v in verdicts] == [Status.AVAILABLE, Status.LOCKED, Status.LOCKED]
        assert verdicts[1].reason is LockReason.PREVIOUS and verdicts[1].waits_for == 1
        assert describe_lock(verdicts[1]) == "Opens when you complete module 1"
        assert describe_lock(verdicts[2]) == "Opens when you complete module 2"
        assert describe_lock(verdicts[0]) is None

    def test_completing_a_module_opens_the_next_only(self) -> None:
        states = [done(), ModuleState(), ModuleState()]
        assert statuses(states) == ["completed", "available", "locked"]

    def test_started_module_is_in_progress(self) -> None:
        states = [done(), ModuleState(started_at=START), ModuleState()]
        assert statuses(states) == ["completed", "in_progress", "locked"]

    def test_nothing_opens_before_the_program_starts(self) -> None:
        verdicts = evaluate([ModuleState()] * 2, SEQUENTIAL, activated_at=None, now=START)
        assert all(v.reason is LockReason.NOT_STARTED for v in verdicts)
        assert describe_lock(verdicts[0]) == "Opens when your program starts"

    def test_unlock_all_opens_everything(self) -> None:
        pacing = EffectivePacing("all", therapist_gate=True, min_days_between_modules=7)
        assert statuses([ModuleState()] * 4, pacing) == ["available"] * 4

    def test_work_once_started_is_never_locked_again(self) -> None:
        # A therapist turns the gate on after module 2 was started: it stays in progress.
        gated = EffectivePacing("sequential", therapist_gate=True, min_days_between_modules=0)
        states = [done(), ModuleState(started_at=START), ModuleState()]
        assert statuses(states, gated) == ["completed", "in_progress", "locked"]


class TestTherapistGate:
    GATED = EffectivePacing("sequential", therapist_gate=True, min_days_between_modules=0)

    def test_next_module_waits_for_the_therapist(self) -> None:
        verdicts = evaluate([done(), ModuleState()], self.GATED, activated_at=START, now=START)
        assert verdicts[1].status is Status.LOCKED
        assert verdicts[1].reason is LockReason.THERAPIST_GATE
        assert describe_lock(verdicts[1]) == "Your therapist opens this module"

    def test_gate_does_not_apply_to_the_first_module(self) -> None:
        assert statuses([ModuleState(), ModuleState()], self.GATED) == ["available", "locked"]

    def test_the_previous_module_is_still_named_first(self) -> None:
        verdicts = evaluate([ModuleState()] * 2, self.GATED, activated_at=START, now=START)
        assert verdicts[1].reason is LockReason.PREVIOUS

    def test_therapist_opening_unlocks_it(self) -> None:
        states = [done(), ModuleState(opened_by_therapist=True)]
        assert statuses(states, self.GATED) == ["completed", "available"]

    def test_opening_early_skips_the_queue(self) -> None:
        states = [ModuleState(), ModuleState(), ModuleState(opened_by_therapist=True)]
        assert statuses(states) == ["available", "locked", "available"]


class TestMinimumDays:
    WEEKLY = EffectivePacing("sequential", therapist_gate=False, min_days_between_modules=7)

    def test_counts_whole_utc_days_from_the_completion_day(self) -> None:
        completed = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
        states = [ModuleState(started_at=completed, completed_at=completed), ModuleState()]
        before = evaluate(
            states, self.WEEKLY, activated_at=START, now=datetime(2026, 3, 11, 23, 59, tzinfo=UTC)
        )
        assert before[1].reason is LockReason.DATE
        assert before[1].opens_on == date(2026, 3, 12)
        assert describe_lock(before[1]) == "Opens on 12 March"
        on_the_day = evaluate(
            states, self.WEEKLY, activated_at=START, now=datetime(2026, 3, 12, 0, 0, tzinfo=UTC)
        )
        assert on_the_day[1].status is Status.AVAILABLE

    def test_zero_days_opens_at_once(self) -> None:
        assert statuses([done(), ModuleState()]) == ["completed", "available"]

    def test_gate_is_reported_before_the_date(self) -> None:
        both = EffectivePacing("sequential", therapist_gate=True, min_days_between_modules=7)
        verdicts = evaluate([done(), ModuleState()], both, activated_at=START, now=START)
        assert verdicts[1].reason is LockReason.THERAPIST_GATE

    def test_therapist_opening_overrides_the_wait(self) -> None:
        states = [done(), ModuleState(opened_by_therapist=True)]
        assert statuses(states, self.WEEKLY) == ["completed", "available"]


class TestHidden:
    def test_hidden_modules_are_skipped_by_the_chain_and_the_numbering(self) -> None:
        states = [done(), ModuleState(hidden=True), ModuleState()]
        verdicts = evaluate(states, SEQUENTIAL, activated_at=START, now=START)
        assert verdicts[1].reason is LockReason.HIDDEN and verdicts[1].number is None
        assert verdicts[2].status is Status.AVAILABLE and verdicts[2].number == 2

    def test_waiting_names_the_visible_number(self) -> None:
        states = [ModuleState(), ModuleState(hidden=True), ModuleState()]
        verdicts = evaluate(states, SEQUENTIAL, activated_at=START, now=START)
        assert describe_lock(verdicts[2]) == "Opens when you complete module 1"

    def test_hiding_the_first_module_makes_the_next_one_first(self) -> None:
        states = [ModuleState(hidden=True), ModuleState()]
        assert statuses(states) == ["locked", "available"]


class TestWhatIsNext:
    def test_in_progress_comes_before_available(self) -> None:
        states = [done(), ModuleState(opened_by_therapist=True), ModuleState(started_at=START)]
        verdicts = evaluate(states, SEQUENTIAL, activated_at=START, now=START)
        assert next_up(verdicts) == 2

    def test_waiting_is_the_first_locked_visible_module(self) -> None:
        gated = EffectivePacing("sequential", therapist_gate=True, min_days_between_modules=0)
        verdicts = evaluate(
            [done(), ModuleState(), ModuleState()], gated, activated_at=START, now=START
        )
        assert next_up(verdicts) is None
        assert waiting(verdicts) == 1

    def test_all_completed(self) -> None:
        verdicts = evaluate([done(), done()], SEQUENTIAL, activated_at=START, now=START)
        assert next_up(verdicts) is None and waiting(verdicts) is None


def test_overrides_replace_only_what_they_set() -> None:
    program = Pacing(unlock="sequential", therapist_gate=True, min_days_between_modules=7)
    assert effective_pacing(program) == EffectivePacing("sequential", True, 7)
    changed = effective_pacing(program, therapist_gate=False)
    assert (changed.therapist_gate, changed.min_days_between_modules) == (False, 7)
    assert changed.gate_overridden and not changed.days_overridden
    zero = effective_pacing(program, min_days_between_modules=0)
    assert zero.min_days_between_modules == 0 and zero.days_overridden
