"""The generic exercise form: from posted fields to an answer and back, without JavaScript."""

from __future__ import annotations

from app.content.schemas import ExerciseSpec
from app.programs import service
from app.programs.exercises import MAX_ROWS, field_schema, validate_draft, validate_submission
from app.programs.pages import (
    _row_action,
    answer_items,
    build_fields,
    derived_items,
    form_to_data,
)


def schema(type_name: str, **extra):
    spec = ExerciseSpec(id="ex", type=type_name, title="Exercise", instructions="Do it.", **extra)
    return spec, service.form_fields_read(field_schema(type_name, spec))


def test_nested_rows_become_lists_and_blank_rows_are_dropped():
    spec, fields = schema("drinking_diary")
    form = {
        "days.0.date": "2026-03-02",
        "days.0.drinks.0.kind": "Beer",
        "days.0.drinks.0.volume_ml": "330",
        "days.0.drinks.0.abv": "4.7",
        "days.0.drinks.1.volume_ml": "",  # an untouched drink row
        "days.0.urge": "6",
        "days.1.date": "",  # an untouched day
        "days.1.urge": "",
        "unknown.field": "ignored",
        "csrf_token": "never part of the answer",
    }
    data = form_to_data(fields, form)
    assert data == {
        "days": [
            {
                "date": "2026-03-02",
                "drinks": [{"kind": "Beer", "volume_ml": "330", "abv": "4.7", "count": None}],
                "situation": None,
                "urge": "6",
            }
        ]
    }
    result = validate_submission(spec.type, data, spec)
    assert result.derived["total_standard_drinks"] == 1.0  # 330 ml x 4.7 % x 0.789 = 12.2 g


def test_row_indices_are_capped_and_kept_in_order():
    _spec, fields = schema("exposure_hierarchy")
    form = {f"rows.{i}.situation": f"Step {i}" for i in (7, 2, 9999)}
    data = form_to_data(fields, form)
    assert [row["situation"] for row in data["rows"]] == ["Step 2", "Step 7", "Step 9999"]
    many = {f"rows.{i}.situation": "x" for i in range(MAX_ROWS + 40)}
    assert len(form_to_data(fields, many)["rows"]) == 30  # the hierarchy's own limit


def test_checkboxes_questions_and_ratings():
    spec, fields = schema("free_text", questions=["One?", "Two?", "Three?"])
    assert form_to_data(fields, {"answers.0": "a", "answers.2": " "}) == {
        "answers": ["a", None, None]
    }
    spec, fields = schema("rating", questions=["How calm?", "How sure?"])
    assert form_to_data(fields, {"ratings.1": "7"}) == {"ratings": [None, "7"]}
    spec, fields = schema("activity_schedule")
    data = form_to_data(fields, {"rows.0.activity": "Walk", "rows.0.done": "true"})
    assert data["rows"][0]["done"] is True and data["rows"][0]["planned"] is None
    assert validate_draft(spec.type, data, spec)["rows"][0]["done"] is True


def test_add_and_remove_rows():
    _spec, fields = schema("drinking_diary")
    data = form_to_data(fields, {"days.0.date": "2026-03-02"}, drop_blank=False)
    assert _row_action(data, "add_row:days.0.drinks")
    assert data["days"][0]["drinks"] == [{}]
    assert _row_action(data, "add_row:days")
    assert len(data["days"]) == 2
    assert _row_action(data, "remove_row:days.0")
    assert data["days"] == [{}]
    assert not _row_action(data, "remove_row:days.5")
    assert not _row_action(data, "add_row:nothing.here")
    assert not _row_action(data, "dance:days")


def test_fields_show_values_errors_and_at_least_one_row():
    _spec, fields = schema("sleep_diary")
    empty = build_fields(fields, {}, {}, exercise_id="diary")
    assert len(empty[0].rows) == 1 and empty[0].rows[0].fields[0].name == "nights.0.date"
    data = {"nights": [{"bed_time": "23:00:00", "minutes_to_sleep": "half an hour"}, {}]}
    errors = {
        "nights.0.minutes_to_sleep": "Please enter a whole number.",
        "nights": "Add at least one row.",
    }
    views = build_fields(fields, data, errors, exercise_id="diary")
    nights = views[0]
    assert nights.error == "Add at least one row." and len(nights.rows) == 2
    by_name = {f.name: f for f in nights.rows[0].fields}
    assert by_name["nights.0.bed_time"].value == "23:00"
    typed = by_name["nights.0.minutes_to_sleep"]
    assert typed.value == "half an hour" and typed.error == "Please enter a whole number."
    assert typed.id == "x-diary-nights-0-minutes_to_sleep"
    assert typed.hint == "A number from 0 to 720"


def test_friendly_messages():
    errors = [
        {
            "field": "a",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        },
        {"field": "b", "message": "Input should be less than or equal to 100"},
        {"field": "c", "message": "Input should be greater than or equal to 0.0"},
        {"field": "d", "message": "Input should be 'meal', 'snack' or 'other'"},
        {"field": "e", "message": "This is required."},
        {"field": "e", "message": "Listed twice."},
    ]
    assert service.friendly(errors) == [
        {"field": "a", "message": "Please enter a whole number."},
        {"field": "b", "message": "Please enter 100 or less."},
        {"field": "c", "message": "Please enter 0 or more."},
        {"field": "d", "message": "Please choose one of the options."},
        {"field": "e", "message": "This is required."},
    ]


def test_answers_and_derived_figures_read_as_text():
    _spec, fields = schema("eating_diary")
    data = {
        "entries": [
            {
                "date": "2026-03-02",
                "time": "08:00:00",
                "what_eaten": "Porridge",
                "kind": "meal",
                "planned": True,
            }
        ]
    }
    items = answer_items(fields, data)
    assert items[0].label == "Eating"
    row = dict(zip(items[0].headers, items[0].rows[0], strict=True))
    assert (
        row["Time"] == "08:00"
        and row["Meal or snack"] == "Meal"
        and row["Part of my eating plan"] == "Yes"
    )
    assert row["Felt out of control / a binge"] == "—"
    derived = derived_items({"mean_sleep_efficiency": 81.25, "order": [2, 0, 1], "heavy": False})
    assert [(d.label, d.text) for d in derived] == [
        ("Mean sleep efficiency (%)", "81.2"),
        ("Order", "2, 0, 1"),
        ("Heavy", "No"),
    ]
