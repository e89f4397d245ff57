"""The content loader and checker on small trees written per test, valid and broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.content.loader import (
    ContentError,
    ContentProblem,
    check_content,
    load_instruments,
    load_library,
)

SENTENCE = "Small steps done most days add up to a real change in how the week feels. "
PROSE = SENTENCE * 18  # 270 words a page, so three pages clear the 600-word floor

INSTRUMENT = """\
code: phq9
title: Mood check
wording: summary
source: Made up for tests
options:
  - {value: 0, label: Not at all}
  - {value: 1, label: Some days}
  - {value: 2, label: Most days}
  - {value: 3, label: Every day}
items:
  - {id: q1, text: Low mood}
  - {id: q2, text: Low energy}
  - {id: q3, text: Thoughts of self-harm}
scoring: {method: sum, min: 0, max: 9}
bands:
  - {min: 0, max: 3, label: low}
  - {min: 4, max: 6, label: middle}
  - {min: 7, max: 9, label: high}
reliable_change: 3
risk:
  - {item: q3, min_value: 1, level: urgent, reason: Self-harm thoughts}
"""

PROGRAM = """\
slug: depression
title: Lifting low mood
summary: A short program for tests.
weeks: 4
pacing:
  unlock: sequential
  therapist_gate: false
  min_days_between_modules: 0
instruments:
  weekly: [phq9]
modules:
  - 01-first-steps
"""

FRONT = """\
---
title: First steps
minutes: 30
summary: How doing shapes feeling.
exercises:
  - id: diary
    type: activity_schedule
    title: My diary
    instructions: Fill it in each evening.
    homework: true
  - id: notes
    type: free_text
    title: Notes
    instructions: Look back over the week.
    questions:
      - What did you notice?
---
"""

BODY = f"""\
# What this is about

{PROSE}

# Trying it out

{PROSE}

[[exercise:diary]]

A last word with <script>alert(1)</script> in it.

# This week

{PROSE}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    content = tmp_path / "modules"
    write(content / "instruments" / "phq9.yaml", INSTRUMENT)
    write(content / "depression" / "program.yaml", PROGRAM)
    write(content / "depression" / "01-first-steps.md", FRONT + BODY)
    return content


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def found(root: Path, overlay: Path | None = None) -> list[tuple[str, int, str]]:
    return [
        (p.path.relative_to(root.parent).as_posix(), p.line, p.message)
        for p in check_content(root, overlay)
    ]


def assert_problem(
    root: Path, rel: str, line: int, fragment: str, overlay: Path | None = None
) -> None:
    problems = found(root, overlay)
    matches = [p for p in problems if p[0] == rel and p[1] == line and fragment in p[2]]
    assert matches, f"no {rel}:{line} containing {fragment!r} in {problems}"


# --- a valid tree ------------------------------------------------------------------------------


def test_valid_tree_has_no_problems(root: Path) -> None:
    assert check_content(root) == []


def test_load_library_parses_programs_modules_and_instruments(root: Path) -> None:
    library = load_library(root)
    assert list(library.programs) == ["depression"]
    program = library.program("depression")
    assert program.title == "Lifting low mood"
    assert program.instruments.weekly == ["phq9"]
    module = library.module("depression", "01-first-steps")
    assert module.number == 1
    assert [page.title for page in module.pages] == [
        "What this is about",
        "Trying it out",
        "This week",
    ]
    assert module.words >= 600
    assert module.exercise("diary").homework is True
    assert [spec.id for spec in module.homework] == ["diary"]
    assert library.instrument("phq9").items[2].id == "q3"


def test_markers_split_a_page_into_segments(root: Path) -> None:
    page = load_library(root).module("depression", "01-first-steps").pages[1]
    assert [segment.exercise_id for segment in page.segments] == ["diary", None]
    assert page.exercise_ids == ["diary"]
    assert "[[exercise" not in page.html
    assert page.segments[0].html.startswith("<p>Small steps")


def test_exercise_without_marker_goes_after_the_last_page(root: Path) -> None:
    module = load_library(root).module("depression", "01-first-steps")
    assert [spec.id for spec in module.unplaced_exercises] == ["notes"]


def test_raw_html_is_escaped_not_rendered(root: Path) -> None:
    page = load_library(root).module("depression", "01-first-steps").pages[1]
    assert "<script>" not in page.html
    assert "&lt;script&gt;" in page.html


def test_javascript_links_are_not_rendered(root: Path) -> None:
    module = root / "depression" / "01-first-steps.md"
    write(module, FRONT + BODY + "\n[click me](javascript:alert(1))\n")
    html = load_library(root).module("depression", "01-first-steps").pages[2].html
    assert "<a " not in html
    assert "href" not in html


def test_only_existing_program_folders_are_loaded_in_slug_order(root: Path) -> None:
    write(root / "bipolar" / "program.yaml", PROGRAM.replace("depression", "bipolar"))
    write(root / "bipolar" / "01-first-steps.md", FRONT + BODY)
    assert list(load_library(root).programs) == ["depression", "bipolar"]


def test_library_lookups_raise_key_error(root: Path) -> None:
    library = load_library(root)
    with pytest.raises(KeyError):
        library.program("ocd")
    with pytest.raises(KeyError):
        library.module("depression", "02-missing")
    with pytest.raises(KeyError):
        library.instrument("gad7")


def test_problem_string_is_path_line_message() -> None:
    problem = ContentProblem(Path("modules/gad/program.yaml"), 7, "something is wrong")
    assert str(problem) == "modules/gad/program.yaml:7: something is wrong"


def test_load_library_raises_with_every_problem(root: Path) -> None:
    write(root / "depression" / "program.yaml", PROGRAM.replace("weeks: 4", "weeks: zero"))
    write(root / "instruments" / "gad7.yaml", "code: [")
    with pytest.raises(ContentError) as caught:
        load_library(root)
    assert len(caught.value.problems) == 2
    assert "weeks" in str(caught.value)


def test_missing_root_is_a_problem(tmp_path: Path) -> None:
    problems = check_content(tmp_path / "nowhere")
    assert [p.message for p in problems] == ["content folder not found"]


# --- YAML and schema problems, located to the line ---------------------------------------------


def test_yaml_syntax_error_reports_its_line(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("weeks: 4", "weeks: [4"),
    )
    problems = found(root)
    assert problems[0][0] == "modules/depression/program.yaml"
    assert problems[0][2].startswith("YAML syntax")
    assert problems[0][1] >= line_of(path, "weeks:")


def test_wrong_value_points_at_its_key(root: Path) -> None:
    path = write(root / "depression" / "program.yaml", PROGRAM.replace("weeks: 4", "weeks: 99"))
    assert_problem(root, "modules/depression/program.yaml", line_of(path, "weeks:"), "weeks:")


def test_misspelt_key_points_at_its_line(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("  therapist_gate: false", "  therapist_gte: false"),
    )
    assert_problem(
        root,
        "modules/depression/program.yaml",
        line_of(path, "therapist_gte"),
        "pacing.therapist_gte: Extra inputs are not permitted",
    )


def test_missing_key_points_at_the_mapping_that_lacks_it(root: Path) -> None:
    text = FRONT.replace("    title: My diary\n", "")
    path = write(root / "depression" / "01-first-steps.md", text + BODY)
    assert_problem(
        root,
        "modules/depression/01-first-steps.md",
        line_of(path, "- id: diary"),
        "exercises.0.title: Field required",
    )


def test_duplicate_yaml_key_is_reported(root: Path) -> None:
    path = write(root / "depression" / "program.yaml", PROGRAM + "weeks: 5\n")
    assert_problem(root, "modules/depression/program.yaml", line_of(path, "weeks: 5"), "duplicate")


def test_yaml_boolean_trap_is_caught(root: Path) -> None:
    path = write(
        root / "instruments" / "phq9.yaml",
        INSTRUMENT.replace("label: Not at all", "label: No"),
    )
    assert_problem(
        root, "modules/instruments/phq9.yaml", line_of(path, "label: No"), "valid string"
    )


def test_slug_must_match_folder(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("slug: depression", "slug: low-mood"),
    )
    assert_problem(root, "modules/depression/program.yaml", line_of(path, "slug:"), "folder")


def test_unknown_folder_is_reported(root: Path) -> None:
    (root / "drafts").mkdir()
    assert_problem(root, "modules/drafts", 1, "unknown folder")


# --- program checks ----------------------------------------------------------------------------


def test_missing_program_yaml(root: Path) -> None:
    (root / "gad").mkdir()
    assert_problem(root, "modules/gad/program.yaml", 1, "missing program.yaml")


def test_listed_module_must_exist(root: Path) -> None:
    path = write(root / "depression" / "program.yaml", PROGRAM + "  - 02-next-steps\n")
    assert_problem(
        root, "modules/depression/program.yaml", line_of(path, "02-next-steps"), "not found"
    )


def test_stray_module_file_is_reported(root: Path) -> None:
    write(root / "depression" / "02-forgotten.md", FRONT + BODY)
    assert_problem(root, "modules/depression/02-forgotten.md", 1, "not listed")


def test_module_names_and_order(root: Path) -> None:
    write(root / "depression" / "00-intro.md", FRONT + BODY)
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM + "  - 00-intro\n  - Bad_Name\n  - 01-first-steps\n",
    )
    rel = "modules/depression/program.yaml"
    assert_problem(root, rel, line_of(path, "00-intro"), "numbers must increase")
    assert_problem(root, rel, line_of(path, "Bad_Name"), "must look like 01-some-title")
    assert_problem(root, rel, line_of(path, "  - 01-first-steps") + 3, "listed twice")


def test_unknown_instrument_reference(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("weekly: [phq9]", "weekly: [phq9]\n  baseline_and_end: [gad7]"),
    )
    assert_problem(
        root, "modules/depression/program.yaml", line_of(path, "gad7"), "'gad7' not found"
    )


def test_phq9_must_be_weekly(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("weekly: [phq9]", "weekly: []\n  baseline_and_end: [phq9]"),
    )
    assert_problem(
        root, "modules/depression/program.yaml", line_of(path, "weekly:"), "weekly in every"
    )


def test_instrument_in_both_lists(root: Path) -> None:
    path = write(
        root / "depression" / "program.yaml",
        PROGRAM.replace("weekly: [phq9]", "weekly: [phq9]\n  baseline_and_end: [phq9]"),
    )
    assert_problem(
        root, "modules/depression/program.yaml", line_of(path, "instruments:"), "both weekly"
    )


# --- module checks -----------------------------------------------------------------------------


def module_path(root: Path) -> Path:
    return root / "depression" / "01-first-steps.md"


REL_MODULE = "modules/depression/01-first-steps.md"


def test_unknown_exercise_type(root: Path) -> None:
    path = write(module_path(root), FRONT.replace("activity_schedule", "activity_plan") + BODY)
    assert_problem(root, REL_MODULE, line_of(path, "activity_plan"), "unknown exercise type")


def test_unknown_marker(root: Path) -> None:
    path = write(module_path(root), FRONT + BODY.replace("exercise:diary", "exercise:dairy"))
    assert_problem(root, REL_MODULE, line_of(path, "exercise:dairy"), "unknown exercise 'dairy'")


def test_marker_must_stand_alone(root: Path) -> None:
    body = BODY.replace("[[exercise:diary]]", "Now try it: [[exercise:diary]]")
    path = write(module_path(root), FRONT + body)
    assert_problem(root, REL_MODULE, line_of(path, "Now try it"), "alone on its line")


def test_exercise_placed_twice(root: Path) -> None:
    body = BODY.replace("# This week\n", "# This week\n\n[[exercise:diary]]\n")
    path = write(module_path(root), FRONT + body)
    second = [i for i, ln in enumerate(path.read_text().splitlines(), 1) if "exercise:diary" in ln]
    assert_problem(root, REL_MODULE, second[1], "already placed")


def test_duplicate_exercise_id(root: Path) -> None:
    front = FRONT.replace("  - id: notes", "  - id: diary")
    path = write(module_path(root), front + BODY)
    lines = [i for i, ln in enumerate(path.read_text().splitlines(), 1) if "- id: diary" in ln]
    assert_problem(root, REL_MODULE, lines[1], "duplicate exercise id")


def test_questions_rules(root: Path) -> None:
    front = FRONT.replace(
        "    homework: true\n", "    homework: true\n    questions:\n      - Why?\n"
    ).replace("    questions:\n      - What did you notice?\n", "")
    path = write(module_path(root), front + BODY)
    assert_problem(root, REL_MODULE, line_of(path, "    questions:"), "only go on free_text")
    assert_problem(root, REL_MODULE, line_of(path, "- id: notes"), "needs questions")


def test_scale_only_on_rating(root: Path) -> None:
    front = FRONT.replace(
        "    homework: true\n", "    homework: true\n    scale: {min: 0, max: 5}\n"
    )
    path = write(module_path(root), front + BODY)
    assert_problem(root, REL_MODULE, line_of(path, "scale:"), "scale only goes on rating")


def test_too_few_pages_and_words(root: Path) -> None:
    body = "# Only page\n\nA few words.\n\n[[exercise:diary]]\n"
    path = write(module_path(root), FRONT + body)
    first_body_line = line_of(path, "# Only page")
    assert_problem(root, REL_MODULE, first_body_line, "1 page(s)")
    assert_problem(root, REL_MODULE, first_body_line, "a module needs 600")


def test_module_needs_an_exercise(root: Path) -> None:
    front = "---\ntitle: First steps\nminutes: 30\nsummary: Short.\n---\n"
    body = BODY.replace("[[exercise:diary]]", "")
    write(module_path(root), front + body)
    assert_problem(root, REL_MODULE, 2, "at least one exercise")


def test_front_matter_required(root: Path) -> None:
    write(module_path(root), BODY)
    assert_problem(root, REL_MODULE, 1, "front matter")


def test_front_matter_must_close(root: Path) -> None:
    write(module_path(root), FRONT.rstrip().removesuffix("---") + BODY)
    assert_problem(root, REL_MODULE, 1, "not closed")


def test_text_before_first_heading(root: Path) -> None:
    path = write(module_path(root), FRONT + "\nStray intro.\n\n" + BODY)
    assert_problem(root, REL_MODULE, line_of(path, "Stray intro"), "before the first")


def test_heading_inside_code_fence_is_not_a_page(root: Path) -> None:
    body = BODY.replace("# This week\n", "```\n# not a page\n```\n\n# This week\n")
    write(module_path(root), FRONT + body)
    pages = load_library(root).module("depression", "01-first-steps").pages
    assert len(pages) == 3
    assert pages[2].line == line_of(module_path(root), "# This week")


# --- instrument checks -------------------------------------------------------------------------

REL_PHQ = "modules/instruments/phq9.yaml"


def instrument_path(root: Path) -> Path:
    return root / "instruments" / "phq9.yaml"


def test_instrument_code_must_match_file(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("code: phq9", "code: phq"))
    assert_problem(root, REL_PHQ, line_of(path, "code:"), "match file name")


def test_band_gap(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("{min: 4, max: 6", "{min: 5, max: 6"))
    assert_problem(root, REL_PHQ, line_of(path, "{min: 5, max: 6"), "gap: 4..4")


def test_band_overlap(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("{min: 4, max: 6", "{min: 3, max: 6"))
    assert_problem(root, REL_PHQ, line_of(path, "{min: 3, max: 6"), "overlaps")


def test_bands_short_of_max(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("{min: 7, max: 9", "{min: 7, max: 8"))
    assert_problem(root, REL_PHQ, line_of(path, "bands:"), "below max 9")


def test_scoring_range_must_match_options(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("max: 9}", "max: 10}"))
    assert_problem(root, REL_PHQ, line_of(path, "scoring:"), "give 0..9")


def test_risk_rule_unknown_item(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT.replace("{item: q3", "{item: q9"))
    assert_problem(root, REL_PHQ, line_of(path, "{item: q9"), "unknown item 'q9'")


def test_risk_rule_value_must_be_an_option_above_the_lowest(root: Path) -> None:
    for bad in ("min_value: 0", "min_value: 7"):
        path = write(instrument_path(root), INSTRUMENT.replace("min_value: 1", bad))
        assert_problem(root, REL_PHQ, line_of(path, bad), "must be one of [1, 2, 3]")


def test_risk_rule_on_total_must_be_in_range(root: Path) -> None:
    extra = "  - {min_value: 10, level: warning, reason: High total}\n"
    path = write(instrument_path(root), INSTRUMENT + extra)
    assert_problem(root, REL_PHQ, line_of(path, "High total"), "1..9")


def test_duplicate_item_ids_and_option_values(root: Path) -> None:
    text = INSTRUMENT.replace("{id: q2", "{id: q1").replace(
        "{value: 1, label: Some", "{value: 0, label: Some"
    )
    path = write(instrument_path(root), text)
    assert_problem(root, REL_PHQ, line_of(path, "Low energy"), "duplicate item id")
    assert_problem(root, REL_PHQ, line_of(path, "Some days"), "duplicate option value 0")


def test_item_without_options(root: Path) -> None:
    text = INSTRUMENT.split("options:")[0] + "items:" + INSTRUMENT.split("items:")[1]
    path = write(instrument_path(root), text)
    assert_problem(root, REL_PHQ, line_of(path, "Low mood"), "q1: no options")


def test_subscale_with_unknown_item(root: Path) -> None:
    path = write(instrument_path(root), INSTRUMENT + "subscales:\n  body: [q2, q7]\n")
    assert_problem(root, REL_PHQ, line_of(path, "body:"), "unknown items ['q7']")


def test_load_instruments_alone(root: Path) -> None:
    write(module_path(root), "broken")
    assert list(load_instruments(root)) == ["phq9"]


# --- overlay -----------------------------------------------------------------------------------

OFFICIAL = """\
code: phq9
wording: official
recall: Over the last two weeks
options: {0: Never, 1: Sometimes, 2: Often, 3: Always}
items:
  q1: Official text one
  q2: {text: Official text two}
  q3:
    text: Official text three
    options: {0: No, 1: A little, 2: More, 3: Most}
"""


def test_overlay_sets_official_wording(root: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "instruments" / "phq9.yaml", OFFICIAL.replace("0: No,", "0: 'No',"))
    instrument = load_library(root, overlay).instrument("phq9")
    assert instrument.wording == "official"
    assert instrument.recall == "Over the last two weeks"
    assert [item.text for item in instrument.items] == [
        "Official text one",
        "Official text two",
        "Official text three",
    ]
    assert [o.label for o in instrument.item_options(instrument.items[0])] == [
        "Never",
        "Sometimes",
        "Often",
        "Always",
    ]
    assert instrument.item_options(instrument.items[2])[1].label == "A little"
    assert instrument.scoring.max == 9
    assert instrument.risk[0].item == "q3"


def test_overlay_cannot_change_structure(root: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    text = (
        OFFICIAL.replace("0: No,", "0: 'No',")
        .replace("3: Always}", "3: Always, 4: Beyond}")
        .replace("  q2: {text: Official text two}\n", "  q7: Extra\n")
        + "scoring: {method: sum, min: 0, max: 12}\n"
    )
    path = write(overlay / "instruments" / "phq9.yaml", text)
    rel = "overlay/instruments/phq9.yaml"
    assert_problem(root, rel, line_of(path, "scoring:"), "Extra inputs", overlay)
    # Structure is validated after the schema, so fix the schema and look again.
    write(path, text.replace("scoring: {method: sum, min: 0, max: 12}\n", ""))
    assert_problem(root, rel, line_of(path, "options: {0"), "must match the shipped", overlay)
    assert_problem(root, rel, line_of(path, "q7: Extra"), "unknown item 'q7'", overlay)
    assert_problem(root, rel, line_of(path, "items:"), "q2: no official text", overlay)


def test_overlay_for_unknown_instrument(root: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "instruments" / "isi.yaml", "code: isi\nitems: {}\n")
    assert_problem(root, "overlay/instruments/isi.yaml", 1, "no shipped instrument", overlay)
