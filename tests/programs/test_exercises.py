"""Exercise types: lenient drafts, strict submissions, derived values and form descriptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content.schemas import ExerciseSpec, RatingScale
from app.programs.exercises import (
    EXERCISE_TYPES,
    LONG_TEXT,
    SHORT_TEXT,
    ExerciseValidationError,
    FormField,
    UnknownExerciseTypeError,
    field_schema,
    validate_draft,
    validate_submission,
)

DOCUMENTED_TYPES = {
    "free_text",
    "rating",
    "thought_record",
    "activity_schedule",
    "exposure_hierarchy",
    "exposure_log",
    "sleep_diary",
    "drinking_diary",
    "eating_diary",
    "mood_chart",
    "warning_signs_plan",
    "worry_log",
    "behavioural_experiment",
    "values_goals",
    "problem_solving",
    "relaxation_log",
    "decisional_balance",
}
KINDS = {"text", "textarea", "int", "decimal", "time", "date", "bool", "choice", "rows"}


def spec(type_name: str, **extra: Any) -> ExerciseSpec:
    if type_name in ("free_text", "rating") and "questions" not in extra:
        extra["questions"] = ["First question?", "Second question?"]
    return ExerciseSpec(id="ex", type=type_name, title="Exercise", instructions="Do it.", **extra)


def errors_of(type_name: str, data: object, *, submit: bool = True, **extra: Any) -> list[str]:
    with pytest.raises(ExerciseValidationError) as caught:
        if submit:
            validate_submission(type_name, data, spec(type_name, **extra))
        else:
            validate_draft(type_name, data, spec(type_name, **extra))
    return [error["field"] for error in caught.value.errors]


def submit(type_name: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return validate_submission(type_name, data, spec(type_name), **kwargs).derived


# --- registry and generic behaviour -----------------------------------------------------------


def test_every_documented_type_has_a_model() -> None:
    assert set(EXERCISE_TYPES) == DOCUMENTED_TYPES


@pytest.mark.parametrize("type_name", sorted(DOCUMENTED_TYPES))
def test_an_empty_draft_is_accepted(type_name: str) -> None:
    assert isinstance(validate_draft(type_name, {}, spec(type_name)), dict)


@pytest.mark.parametrize("type_name", sorted(DOCUMENTED_TYPES))
def test_an_empty_submission_names_the_missing_fields(type_name: str) -> None:
    fields = errors_of(type_name, {})
    assert fields
    assert all(fields)


@pytest.mark.parametrize("type_name", sorted(DOCUMENTED_TYPES))
def test_field_schema_describes_every_field(type_name: str) -> None:
    def walk(fields: list[FormField]) -> None:
        for item in fields:
            assert item.kind in KINDS
            assert item.label
            if item.kind == "rows":
                assert item.fields
                assert item.max_rows
                walk(item.fields)
            if item.kind == "choice":
                assert item.choices
            if item.kind in ("text", "textarea"):
                assert item.max_length in (SHORT_TEXT, LONG_TEXT)

    fields = field_schema(type_name, spec(type_name))
    assert fields
    walk(fields)


def test_unknown_type() -> None:
    with pytest.raises(UnknownExerciseTypeError):
        validate_draft("diary_of_dreams", {}, spec("free_text"))
    with pytest.raises(UnknownExerciseTypeError):
        field_schema("diary_of_dreams", spec("free_text"))


def test_data_must_be_a_mapping() -> None:
    assert errors_of("thought_record", ["not", "a", "form"], submit=False) == [""]


def test_unknown_fields_are_rejected() -> None:
    assert errors_of("thought_record", {"mood": "fine"}, submit=False) == ["mood"]


def test_error_string_lists_fields() -> None:
    with pytest.raises(ExerciseValidationError, match="situation: This is required"):
        validate_submission("thought_record", {}, spec("thought_record"))


# --- drafts: lenient but well-typed -------------------------------------------------------------


def test_draft_keeps_partial_rows_and_blank_inputs() -> None:
    data = {"rows": [{"date": "2025-03-01", "situation": "", "suds_before": "40"}]}
    saved = validate_draft("exposure_log", data, spec("exposure_log"))
    row = saved["rows"][0]
    assert row["date"] == "2025-03-01"
    assert row["situation"] is None
    assert row["suds_before"] == 40


def test_draft_rejects_out_of_range_and_wrong_types() -> None:
    data = {
        "rows": [
            {"suds_before": 101, "suds_peak": True, "date": "yesterday", "minutes": "ten"},
        ]
    }
    fields = errors_of("exposure_log", data, submit=False)
    assert sorted(fields) == [
        "rows.0.date",
        "rows.0.minutes",
        "rows.0.suds_before",
        "rows.0.suds_peak",
    ]


def test_draft_rejects_too_long_text() -> None:
    data = {"situation": "x" * (LONG_TEXT + 1)}
    assert errors_of("thought_record", data, submit=False) == ["situation"]
    short = {"rows": [{"situation": "y" * (SHORT_TEXT + 1)}]}
    assert errors_of("exposure_hierarchy", short, submit=False) == ["rows.0.situation"]


def test_draft_rejects_too_many_rows() -> None:
    data: dict[str, list[dict[str, Any]]] = {"rows": [{} for _ in range(31)]}
    assert errors_of("exposure_hierarchy", data, submit=False) == ["rows"]


def test_draft_rejects_unknown_choice() -> None:
    data = {"entries": [{"compensation": "fasting"}]}
    assert errors_of("eating_diary", data, submit=False) == ["entries.0.compensation"]


def test_draft_allows_inconsistent_values_until_submit() -> None:
    row = {
        "date": "2025-03-01",
        "situation": "Bus",
        "suds_before": 60,
        "suds_peak": 30,
        "suds_after": 20,
    }
    validate_draft("exposure_log", {"rows": [row]}, spec("exposure_log"))
    assert errors_of("exposure_log", {"rows": [row]}) == ["rows.0.suds_peak"]


settings_examples = settings(max_examples=150, deadline=None)

row_values = st.fixed_dictionaries(
    {},
    optional={
        "date": st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)).map(dt.date.isoformat),
        "situation": st.text(max_size=40),
        "suds_before": st.integers(0, 100),
        "suds_peak": st.integers(0, 100),
        "suds_after": st.integers(0, 100),
        "minutes": st.integers(0, 600),
        "learned": st.text(max_size=80),
    },
)


@settings_examples
@given(st.lists(row_values, max_size=5))
def test_any_partial_valid_draft_is_accepted_and_stable(rows: list[dict[str, Any]]) -> None:
    first = validate_draft("exposure_log", {"rows": rows}, spec("exposure_log"))
    assert validate_draft("exposure_log", first, spec("exposure_log")) == first
    assert len(first["rows"]) == len(rows)


# --- free text and rating ----------------------------------------------------------------------


def test_free_text_needs_an_answer_per_question() -> None:
    assert errors_of("free_text", {"answers": ["Something"]}) == ["answers.1"]
    assert errors_of("free_text", {"answers": ["a", "b", "c"]}, submit=False) == ["answers"]
    result = validate_submission("free_text", {"answers": ["a", "b"]}, spec("free_text"))
    assert result.data == {"answers": ["a", "b"]}
    assert result.derived == {}


def test_free_text_fields_follow_the_questions() -> None:
    fields = field_schema("free_text", spec("free_text"))
    assert [(f.name, f.label, f.kind) for f in fields] == [
        ("answers.0", "First question?", "textarea"),
        ("answers.1", "Second question?", "textarea"),
    ]


def test_rating_uses_the_content_scale() -> None:
    scale = RatingScale(min=1, max=5, low="Not at all", high="Completely")
    assert errors_of("rating", {"ratings": [0, 6]}, submit=False, scale=scale) == [
        "ratings.0",
        "ratings.1",
    ]
    result = validate_submission("rating", {"ratings": [2, 5]}, spec("rating", scale=scale))
    assert result.derived == {"mean": 3.5}
    fields = field_schema("rating", spec("rating", scale=scale))
    assert (fields[0].min, fields[0].max, fields[0].low_label) == (1, 5, "Not at all")


def test_rating_defaults_to_zero_to_ten() -> None:
    assert errors_of("rating", {"ratings": [11, 3]}, submit=False) == ["ratings.0"]
    assert errors_of("rating", {"ratings": [4]}) == ["ratings.1"]


# --- thought record and behavioural experiment --------------------------------------------------


def test_thought_record_changes() -> None:
    derived = submit(
        "thought_record",
        {
            "situation": "Meeting at work",
            "emotions": [
                {"name": "anxious", "intensity": 80, "rerated": 50},
                {"name": "ashamed", "intensity": 60, "rerated": 40},
            ],
            "automatic_thought": "They think I am useless",
            "thought_belief": 90,
            "balanced_thought": "One comment is not a verdict",
            "balanced_belief": 60,
            "thought_belief_after": 40,
        },
    )
    assert derived["emotion_changes"] == [
        {"emotion": "anxious", "change": -30},
        {"emotion": "ashamed", "change": -20},
    ]
    assert derived["mean_emotion_change"] == -25
    assert derived["belief_change"] == -50


def test_thought_record_requires_an_emotion_with_intensity() -> None:
    data = {
        "situation": "s",
        "emotions": [{"name": "sad"}],
        "automatic_thought": "t",
        "thought_belief": 50,
        "balanced_thought": "b",
    }
    assert errors_of("thought_record", data) == ["emotions.0.intensity"]


def test_behavioural_experiment_belief_change() -> None:
    derived = submit(
        "behavioural_experiment",
        {
            "belief": "If I leave the door unchecked, something bad will happen",
            "belief_before": 85,
            "prediction": "I will not cope",
            "plan": "Leave once, on Monday",
            "outcome": "Uncomfortable for an hour, then fine",
            "belief_after": 35,
        },
    )
    assert derived == {"belief_change": -50}


# --- exposure -----------------------------------------------------------------------------------


def test_exposure_log_suds_change() -> None:
    rows = [
        {
            "date": "2025-03-01",
            "situation": "Touch door handle",
            "suds_before": 50,
            "suds_peak": 70,
            "suds_after": 20,
            "minutes": 30,
        },
        {
            "date": "2025-03-02",
            "situation": "Touch bin lid",
            "suds_before": 60,
            "suds_peak": 60,
            "suds_after": 40,
            "minutes": 15,
        },
    ]
    derived = submit("exposure_log", {"rows": rows})
    assert derived["entries"] == [
        {"suds_change": -30, "peak_to_end": 50},
        {"suds_change": -20, "peak_to_end": 20},
    ]
    assert derived["mean_suds_change"] == -25
    assert derived["total_minutes"] == 45


def test_exposure_log_names_each_missing_field() -> None:
    fields = errors_of("exposure_log", {"rows": [{"date": "2025-03-01", "situation": "Bus"}]})
    assert fields == ["rows.0.suds_before", "rows.0.suds_peak", "rows.0.suds_after"]


def test_exposure_hierarchy_sorted_by_suds() -> None:
    rows = [
        {"situation": "Shop at rush hour", "suds": 80},
        {"situation": "Shop when quiet", "suds": 40, "avoided": True},
        {"situation": "Walk past the shop", "suds": 20},
        {"situation": "Corner shop", "suds": 40},
    ]
    derived = submit("exposure_hierarchy", {"rows": rows})
    assert derived["order"] == [2, 1, 3, 0]
    assert [step["suds"] for step in derived["steps"]] == [20, 40, 40, 80]


# --- sleep diary ---------------------------------------------------------------------------------


def night(**overrides: Any) -> dict[str, Any]:
    base = {
        "date": "2025-03-01",
        "bed_time": "23:00",
        "minutes_to_sleep": 30,
        "times_woken": 2,
        "minutes_awake": 30,
        "final_wake": "06:30",
        "out_of_bed": "07:00",
        "quality": 3,
    }
    return base | overrides


def test_sleep_efficiency_across_midnight() -> None:
    derived = submit("sleep_diary", {"nights": [night()]})
    # 8 h in bed; asleep = 7.5 h to the last waking - 30 - 30 min = 6.5 h = 390 min
    assert derived["nights"] == [
        {
            "date": "2025-03-01",
            "time_in_bed_min": 480,
            "total_sleep_min": 390,
            "sleep_efficiency": 81.2,
        }
    ]
    assert derived["mean_sleep_efficiency"] == 81.2


def test_sleep_efficiency_when_bed_time_is_after_midnight() -> None:
    derived = submit(
        "sleep_diary",
        {"nights": [night(bed_time="01:00", final_wake="08:00", out_of_bed="08:00")]},
    )
    assert derived["nights"][0]["time_in_bed_min"] == 420
    assert derived["nights"][0]["total_sleep_min"] == 360


def test_time_before_trying_to_sleep_counts_as_awake_in_bed() -> None:
    derived = submit("sleep_diary", {"nights": [night(lights_out="23:30")]})
    assert derived["nights"][0]["time_in_bed_min"] == 480
    assert derived["nights"][0]["total_sleep_min"] == 360
    assert derived["nights"][0]["sleep_efficiency"] == 75.0


def test_sleep_means_over_nights() -> None:
    nights = [night(), night(date="2025-03-02", minutes_awake=90)]
    derived = submit("sleep_diary", {"nights": nights})
    assert derived["nights_counted"] == 2
    assert derived["mean_total_sleep_min"] == 360.0
    assert derived["mean_time_in_bed_min"] == 480.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"minutes_awake": 500}, "nights.0.minutes_awake"),
        ({"final_wake": "07:30"}, "nights.0.final_wake"),
        ({"out_of_bed": "23:00"}, "nights.0.out_of_bed"),
        ({"lights_out": "06:45"}, "nights.0.lights_out"),
    ],
)
def test_inconsistent_nights_are_refused(overrides: dict[str, Any], field: str) -> None:
    assert errors_of("sleep_diary", {"nights": [night(**overrides)]}) == [field]


def test_sleep_diary_dates_are_unique() -> None:
    assert errors_of("sleep_diary", {"nights": [night(), night()]}) == ["nights.1.date"]


clock = st.times().map(lambda t: t.replace(second=0, microsecond=0).isoformat(timespec="minutes"))


@settings(max_examples=300, deadline=None)
@given(clock, clock, clock, st.integers(0, 720), st.integers(0, 720))
def test_sleep_efficiency_is_a_percentage_or_the_night_is_refused(
    bed: str, wake: str, up: str, latency: int, awake: int
) -> None:
    data = {
        "nights": [
            night(
                bed_time=bed,
                final_wake=wake,
                out_of_bed=up,
                minutes_to_sleep=latency,
                minutes_awake=awake,
            )
        ]
    }
    try:
        derived = submit("sleep_diary", data)
    except ExerciseValidationError as exc:
        assert exc.errors
        return
    figures = derived["nights"][0]
    assert 0 <= figures["total_sleep_min"] <= figures["time_in_bed_min"] < 24 * 60
    assert 0 <= figures["sleep_efficiency"] <= 100


# --- drinking diary ------------------------------------------------------------------------------

BEER = {"kind": "beer", "volume_ml": 500, "abv": 5}


def test_standard_drinks_worked_example() -> None:
    # 500 ml of 5 % beer holds 19.7 g of ethanol.
    data = {"days": [{"date": "2025-03-01", "drinks": [BEER]}]}
    assert submit("drinking_diary", data)["total_grams"] == 19.7
    by_country = {
        12.0: 1.6,  # Sweden
        10.0: 2.0,  # WHO and most countries
        8.0: 2.5,  # UK unit
        14.0: 1.4,  # USA
    }
    for grams, drinks in by_country.items():
        derived = submit("drinking_diary", data, grams_per_standard_drink=grams)
        assert derived["total_standard_drinks"] == drinks
        assert derived["grams_per_standard_drink"] == grams


def test_heavy_drinking_days_and_alcohol_free_days() -> None:
    days = [
        {"date": "2025-03-01", "drinks": [{**BEER, "count": 4}], "urge": 8},  # 78.9 g
        {"date": "2025-03-02", "drinks": [{**BEER, "count": 2}], "urge": 4},  # 39.5 g
        {"date": "2025-03-03", "drinks": [], "urge": 2},
        {"date": "2025-03-04"},
    ]
    derived = submit("drinking_diary", {"days": days})
    assert derived["heavy_drinking_days"] == 1
    assert derived["drinking_days"] == 2
    assert derived["alcohol_free_days"] == 2
    assert derived["mean_urge"] == 4.7
    assert [d["heavy"] for d in derived["days"]] == [True, False, False, False]
    stricter = submit("drinking_diary", {"days": days}, heavy_day_grams=36)
    assert stricter["heavy_drinking_days"] == 2


def test_drinks_need_volume_and_strength() -> None:
    days = [{"date": "2025-03-01", "drinks": [{"kind": "wine"}]}]
    assert errors_of("drinking_diary", {"days": days}) == [
        "days.0.drinks.0.volume_ml",
        "days.0.drinks.0.abv",
    ]


def test_drink_strength_is_a_percentage() -> None:
    days = [{"date": "2025-03-01", "drinks": [{"volume_ml": 330, "abv": 120}]}]
    assert errors_of("drinking_diary", {"days": days}, submit=False) == ["days.0.drinks.0.abv"]


def test_grams_per_standard_drink_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        validate_submission(
            "drinking_diary", {"days": []}, spec("drinking_diary"), grams_per_standard_drink=0
        )


# --- eating, mood, worry, relaxation, activity ----------------------------------------------------


def test_eating_diary_counts() -> None:
    base = {"date": "2025-03-01", "time": "08:00", "what_eaten": "Porridge"}
    entries = [
        base | {"kind": "meal", "planned": True, "compensation": "none"},
        base | {"time": "10:30", "kind": "snack", "planned": True},
        base | {"time": "15:00", "kind": "other", "binge": True, "compensation": "vomiting"},
        base | {"date": "2025-03-02", "binge": True, "compensation": "laxatives"},
        base | {"date": "2025-03-02", "time": "18:00", "compensation": "exercise"},
    ]
    derived = submit("eating_diary", {"entries": entries})
    assert derived == {
        "entries": 5,
        "days_recorded": 2,
        "planned_kept": 2,
        "binge_count": 2,
        "compensation_count": 3,
        "vomiting_count": 1,
        "laxative_count": 1,
        "exercise_count": 1,
        "purge_count": 2,
    }


def test_mood_chart_summary() -> None:
    days = [
        {"date": "2025-03-01", "mood": -2, "anxiety": 6, "sleep_hours": 8, "medication": "taken"},
        {"date": "2025-03-02", "mood": 1, "sleep_hours": 5.5, "medication": "missed"},
        {"date": "2025-03-03", "mood": 4, "irritability": 7, "sleep_hours": 4},
    ]
    derived = submit("mood_chart", {"days": days})
    assert derived["mean_mood"] == 1.0
    assert (derived["mood_min"], derived["mood_max"], derived["mood_range"]) == (-2, 4, 6)
    assert derived["short_sleep_nights"] == 2
    assert derived["medication_missed_days"] == 1


def test_mood_is_minus_five_to_plus_five() -> None:
    days = [{"date": "2025-03-01", "mood": -6}]
    assert errors_of("mood_chart", {"days": days}, submit=False) == ["days.0.mood"]


def test_worry_log_share_postponed() -> None:
    entries = [
        {"worry": "Money", "kind": "practical", "postponed": True, "still_relevant": True},
        {"worry": "Illness", "kind": "hypothetical", "postponed": True, "still_relevant": False},
        {"worry": "Work", "kind": "hypothetical", "postponed": False, "anxiety": 6},
        {"worry": "Kids", "anxiety": 4},
    ]
    derived = submit("worry_log", {"entries": entries})
    assert derived["postponed_percent"] == 50.0
    assert derived["still_relevant_percent"] == 50.0
    assert (derived["practical"], derived["hypothetical"]) == (1, 2)
    assert derived["mean_anxiety"] == 5.0


def test_relaxation_mean_tension_drop() -> None:
    sessions = [
        {"date": "2025-03-01", "tension_before": 7, "tension_after": 3, "minutes": 15},
        {"date": "2025-03-02", "tension_before": 5, "tension_after": 4, "minutes": 10},
    ]
    derived = submit("relaxation_log", {"sessions": sessions})
    assert derived == {"sessions": 2, "total_minutes": 25, "mean_tension_drop": 2.5}


def test_activity_schedule_share_of_planned_done() -> None:
    rows = [
        {"date": "2025-03-01", "activity": "Walk", "planned": True, "done": True, "mood": 6},
        {"date": "2025-03-01", "activity": "Call Anna", "planned": True, "done": False},
        {"date": "2025-03-02", "activity": "Bake", "planned": True, "done": True, "mood": 8},
        {"date": "2025-03-02", "activity": "TV", "done": True, "mood": 4},
    ]
    derived = submit("activity_schedule", {"rows": rows})
    assert derived["planned"] == 3
    assert derived["planned_done"] == 2
    assert derived["planned_done_percent"] == 66.7
    assert derived["mean_mood"] == 6.0


def test_warning_signs_plan_needs_some_early_signs() -> None:
    data = {"what_i_do": "Call my nurse", "who_to_call": "Nurse, 010 123"}
    assert errors_of("warning_signs_plan", data) == ["early_signs_low"]
    validate_submission(
        "warning_signs_plan", data | {"early_signs_high": "Less sleep"}, spec("warning_signs_plan")
    )


def test_decisional_balance_requires_all_four_cells() -> None:
    data = {"change_pros": "Health", "importance": 8, "confidence": 5}
    assert errors_of("decisional_balance", data) == ["change_cons", "same_pros", "same_cons"]


def test_problem_solving_and_values_goals_rows() -> None:
    assert errors_of("problem_solving", {"problem": "Debt", "solutions": [{}]}) == [
        "solutions.0.idea",
        "chosen",
        "steps",
    ]
    assert errors_of("values_goals", {"areas": [{"area": "Family"}]}) == ["areas.0.what_matters"]


def test_field_schema_rows_and_choices() -> None:
    (entries,) = field_schema("eating_diary", spec("eating_diary"))
    assert entries.kind == "rows"
    assert entries.name == "entries"
    by_name = {f.name: f for f in entries.fields}
    assert by_name["compensation"].kind == "choice"
    assert ("vomiting", "Made myself sick") in by_name["compensation"].choices
    assert by_name["time"].kind == "time"
    assert by_name["what_eaten"].required is True
    (days,) = field_schema("mood_chart", spec("mood_chart"))
    mood = {f.name: f for f in days.fields}["mood"]
    assert (mood.kind, mood.min, mood.max) == ("int", -5, 5)
    (drink_days,) = field_schema("drinking_diary", spec("drinking_diary"))
    drinks = {f.name: f for f in drink_days.fields}["drinks"]
    assert drinks.kind == "rows"
    assert {f.name: f.kind for f in drinks.fields}["abv"] == "decimal"
