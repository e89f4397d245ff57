"""Scoring, bands, risk flags and reliable change for every shipped instrument."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content.loader import load_instruments
from app.content.schemas import Instrument
from app.questionnaires.scoring import (
    AnswerError,
    item_value,
    reliable_change,
    score,
    score_range,
)

MODULES = Path(__file__).parents[2] / "modules"


@cache
def instruments() -> dict[str, Instrument]:
    return load_instruments(MODULES)


CODES = ["phq9", "gad7", "docs", "asrm", "sad_dsm5", "panic_dsm5", "edeqs", "audit", "sci"]


def values(instrument: Instrument, item_id: str) -> list[int]:
    return sorted(o.value for o in instrument.item_options(instrument.item(item_id)))


def lowest(instrument: Instrument) -> dict[str, int]:
    return {
        item.id: min(
            instrument.item_options(item), key=lambda o: item_value(instrument, item, o.value)
        ).value
        for item in instrument.items
    }


def answers_for_total(instrument: Instrument, total: int) -> dict[str, int]:
    """Some valid answers that add up to ``total`` (dynamic programming over items)."""
    reachable: dict[int, dict[str, int]] = {0: {}}
    for item in instrument.items:
        step: dict[int, dict[str, int]] = {}
        for subtotal, chosen in reachable.items():
            for option in instrument.item_options(item):
                points = subtotal + item_value(instrument, item, option.value)
                step.setdefault(points, {**chosen, item.id: option.value})
        reachable = step
    if total not in reachable:
        raise AssertionError(f"{instrument.code}: total {total} cannot be reached")
    return reachable[total]


def answer_sets(instrument: Instrument) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {item.id: st.sampled_from(values(instrument, item.id)) for item in instrument.items}
    )


@st.composite
def instrument_and_answers(draw: st.DrawFn) -> tuple[Instrument, dict[str, int]]:
    instrument = instruments()[draw(st.sampled_from(CODES))]
    return instrument, draw(answer_sets(instrument))


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(instrument_and_answers())
def test_total_is_in_range_and_has_a_band(case: tuple[Instrument, dict[str, int]]) -> None:
    instrument, answers = case
    result = score(instrument, answers)
    assert instrument.scoring.min <= result.total <= instrument.scoring.max
    band = instrument.band_for(result.total)
    assert band is not None
    assert result.band_label == band.label


@settings(max_examples=300, deadline=None)
@given(instrument_and_answers(), st.data())
def test_raising_one_answer_never_lowers_the_total(
    case: tuple[Instrument, dict[str, int]], data: st.DataObject
) -> None:
    instrument, answers = case
    item = data.draw(st.sampled_from(instrument.items))
    higher = [v for v in values(instrument, item.id) if v > answers[item.id]]
    if not higher:
        return
    raised = {**answers, item.id: data.draw(st.sampled_from(higher))}
    before, after = score(instrument, answers).total, score(instrument, raised).total
    assert after >= before if not item.reverse else after <= before


@settings(max_examples=300, deadline=None)
@given(instrument_and_answers(), st.data())
def test_values_outside_the_options_are_rejected(
    case: tuple[Instrument, dict[str, int]], data: st.DataObject
) -> None:
    instrument, answers = case
    item = data.draw(st.sampled_from(instrument.items))
    allowed = values(instrument, item.id)
    bad = data.draw(
        st.one_of(
            st.integers(-1000, 1000).filter(lambda v: v not in allowed),
            st.booleans(),
            st.text(max_size=3),
            st.none(),
            st.floats(allow_nan=False),
        )
    )
    with pytest.raises(AnswerError) as caught:
        score(instrument, {**answers, item.id: bad})  # type: ignore[dict-item]
    assert any(p.startswith(f"{item.id}:") for p in caught.value.problems)


@settings(max_examples=100, deadline=None)
@given(instrument_and_answers(), st.data())
def test_missing_items_are_rejected(
    case: tuple[Instrument, dict[str, int]], data: st.DataObject
) -> None:
    instrument, answers = case
    item = data.draw(st.sampled_from(instrument.items))
    del answers[item.id]
    with pytest.raises(AnswerError) as caught:
        score(instrument, answers)
    assert caught.value.problems == [f"{item.id}: no answer"]


@pytest.mark.parametrize("code", CODES)
def test_every_total_from_min_to_max_is_reachable_and_banded(code: str) -> None:
    instrument = instruments()[code]
    assert score_range(instrument) == (instrument.scoring.min, instrument.scoring.max)
    for total in range(instrument.scoring.min, instrument.scoring.max + 1):
        assert score(instrument, answers_for_total(instrument, total)).total == total


# --- band cut-offs -----------------------------------------------------------------------------

CUT_OFFS = [
    (code, band.min, band.max, band.label) for code in CODES for band in instruments()[code].bands
]


@pytest.mark.parametrize(("code", "low", "high", "label"), CUT_OFFS)
def test_band_edges(code: str, low: int, high: int, label: str) -> None:
    instrument = instruments()[code]
    for total in (low, high):
        assert score(instrument, answers_for_total(instrument, total)).band_label == label
    if low > instrument.scoring.min:
        below = score(instrument, answers_for_total(instrument, low - 1)).band_label
        assert below != label
    if high < instrument.scoring.max:
        above = score(instrument, answers_for_total(instrument, high + 1)).band_label
        assert above != label


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("phq9", [(0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"),
                  (15, 19, "moderately severe"), (20, 27, "severe")]),
        ("gad7", [(0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")]),
        ("audit", [(0, 7, "low risk"), (8, 15, "hazardous"), (16, 19, "harmful"),
                   (20, 40, "possible dependence")]),
        ("asrm", [(0, 5, "below cut-off"), (6, 20, "possible elevated mood (6 or more)")]),
        ("sci", [(0, 16, "probable insomnia (16 or less)"), (17, 32, "below insomnia threshold")]),
    ],
)  # fmt: skip
def test_published_bands(code: str, expected: list[tuple[int, int, str]]) -> None:
    assert [(b.min, b.max, b.label) for b in instruments()[code].bands] == expected


# --- risk flags --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 3])
def test_phq9_item_9_is_urgent_whatever_the_total(value: int) -> None:
    phq9 = instruments()["phq9"]
    result = score(phq9, {**lowest(phq9), "q9": value})
    assert result.total == value
    assert result.band_label == "minimal"
    assert [(f.level, f.item, f.value) for f in result.risk] == [("urgent", "q9", value)]
    assert result.highest_risk == "urgent"


def test_phq9_without_item_9_has_no_flag() -> None:
    phq9 = instruments()["phq9"]
    answers = {**{item.id: 3 for item in phq9.items}, "q9": 0}
    result = score(phq9, answers)
    assert result.total == 24
    assert result.risk == []
    assert result.highest_risk is None


def test_asrm_total_of_six_warns() -> None:
    asrm = instruments()["asrm"]
    five = score(asrm, {"q1": 2, "q2": 2, "q3": 0, "q4": 1, "q5": 0})
    six = score(asrm, {"q1": 2, "q2": 2, "q3": 0, "q4": 1, "q5": 1})
    assert five.risk == []
    assert [(f.level, f.item, f.value) for f in six.risk] == [("warning", None, 6)]


def test_asrm_much_less_sleep_warns() -> None:
    asrm = instruments()["asrm"]
    result = score(asrm, {"q1": 0, "q2": 0, "q3": 3, "q4": 0, "q5": 0})
    assert [(f.level, f.item) for f in result.risk] == [("warning", "q3")]


def test_audit_items_9_and_10_take_0_2_4_only() -> None:
    audit = instruments()["audit"]
    assert values(audit, "q9") == [0, 2, 4]
    with pytest.raises(AnswerError):
        score(audit, {**lowest(audit), "q9": 1})


def test_audit_morning_drinking_and_high_total() -> None:
    audit = instruments()["audit"]
    answers = {f"q{i}": 4 for i in range(1, 9)} | {"q9": 0, "q10": 0}
    result = score(audit, answers)
    assert result.total == 32
    levels = {(f.item, f.level) for f in result.risk}
    assert {(None, "warning"), ("q6", "warning"), ("q4", "info"), ("q5", "info")} <= levels
    assert result.subscales == {"consumption": 12, "dependence": 12, "harm": 8}


def test_edeqs_purging_warns() -> None:
    edeqs = instruments()["edeqs"]
    result = score(edeqs, {**lowest(edeqs), "q7": 1})
    assert [(f.level, f.item) for f in result.risk] == [("warning", "q7")]


def test_docs_subscales() -> None:
    docs = instruments()["docs"]
    answers = {f"q{i}": (4 if i <= 5 else 0) for i in range(1, 21)}
    result = score(docs, answers)
    assert result.subscales == {"contamination": 20, "harm": 0, "thoughts": 0, "symmetry": 0}
    assert result.total == 20
    assert result.band_label == "above non-clinical cut-off (18)"


def test_unknown_items_are_rejected() -> None:
    gad7 = instruments()["gad7"]
    with pytest.raises(AnswerError) as caught:
        score(gad7, {**lowest(gad7), "q8": 0})
    assert caught.value.problems == ["unknown item 'q8'"]


# --- reliable change ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [
        (18, 12, "improved"),
        (18, 13, "no_reliable_change"),
        (12, 18, "deteriorated"),
        (12, 17, "no_reliable_change"),
        (10, 10, "no_reliable_change"),
    ],
)
def test_phq9_reliable_change(baseline: int, latest: int, expected: str) -> None:
    assert reliable_change(instruments()["phq9"], baseline, latest) == expected


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [(10, 16, "improved"), (16, 10, "deteriorated"), (10, 15, "no_reliable_change")],
)
def test_sci_rising_is_improvement(baseline: int, latest: int, expected: str) -> None:
    assert reliable_change(instruments()["sci"], baseline, latest) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CODES), st.data())
def test_reliable_change_is_antisymmetric(code: str, data: st.DataObject) -> None:
    instrument = instruments()[code]
    totals = st.integers(instrument.scoring.min, instrument.scoring.max)
    a, b = data.draw(totals), data.draw(totals)
    forward, backward = reliable_change(instrument, a, b), reliable_change(instrument, b, a)
    mirror = {"improved": "deteriorated", "deteriorated": "improved"}
    assert backward == mirror.get(forward, forward)


def test_reliable_change_rejects_totals_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        reliable_change(instruments()["gad7"], 0, 22)


# --- reverse-scored items ----------------------------------------------------------------------


def reverse_instrument() -> Instrument:
    return Instrument.model_validate(
        {
            "code": "rev",
            "title": "Reverse test",
            "source": "tests",
            "options": [{"value": v, "label": str(v)} for v in range(1, 6)],
            "items": [
                {"id": "a", "text": "Plain"},
                {"id": "b", "text": "Reversed", "reverse": True},
            ],
            "scoring": {"min": 2, "max": 10},
            "bands": [{"min": 2, "max": 5, "label": "low"}, {"min": 6, "max": 10, "label": "high"}],
            "reliable_change": 2,
            "risk": [{"item": "b", "min_value": 5, "level": "info", "reason": "raw value"}],
        }
    )


def test_reverse_items_are_mirrored() -> None:
    instrument = reverse_instrument()
    assert score_range(instrument) == (2, 10)
    assert score(instrument, {"a": 1, "b": 5}).total == 2
    assert score(instrument, {"a": 5, "b": 1}).total == 10
    assert score(instrument, {"a": 3, "b": 2}).total == 7


def test_risk_rules_read_the_raw_answer_of_reverse_items() -> None:
    result = score(reverse_instrument(), {"a": 1, "b": 5})
    assert [(f.item, f.value) for f in result.risk] == [("b", 5)]


@given(st.integers(1, 5), st.integers(1, 4))
def test_reverse_item_total_falls_as_answer_rises(a: int, b: int) -> None:
    instrument = reverse_instrument()
    assert score(instrument, {"a": a, "b": b + 1}).total < score(instrument, {"a": a, "b": b}).total
