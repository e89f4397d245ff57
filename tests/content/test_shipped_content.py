"""The content that ships in ``modules/`` passes every check and is complete."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from app.content.loader import ContentLibrary, check_content, load_instruments, load_library
from app.content.schemas import PROGRAM_SLUGS
from app.programs.exercises import field_schema, validate_draft

MODULES = Path(__file__).parents[2] / "modules"


@cache
def library() -> ContentLibrary:
    return load_library(MODULES)


SHIPPED_INSTRUMENTS = {
    "phq9",
    "gad7",
    "docs",
    "asrm",
    "sad_dsm5",
    "panic_dsm5",
    "edeqs",
    "audit",
    "sci",
}


def test_shipped_content_has_no_problems() -> None:
    problems = check_content(MODULES)
    assert problems == [], "\n" + "\n".join(str(p) for p in problems)


def test_all_nine_programs_exist() -> None:
    missing = [slug for slug in PROGRAM_SLUGS if not (MODULES / slug / "program.yaml").is_file()]
    assert missing == []
    assert list(library().programs) == list(PROGRAM_SLUGS)


def test_shipped_instruments() -> None:
    instruments = load_instruments(MODULES)
    assert set(instruments) == SHIPPED_INSTRUMENTS
    for instrument in instruments.values():
        assert instrument.wording == "summary"
        assert instrument.source.strip()
        assert instrument.notes, f"{instrument.code}: say where [U] figures came from"


def test_phq9_item_9_is_urgent() -> None:
    phq9 = load_instruments(MODULES)["phq9"]
    assert [(r.item, r.min_value, r.level) for r in phq9.risk] == [("q9", 1, "urgent")]


def test_sci_improves_upwards() -> None:
    instruments = load_instruments(MODULES)
    assert instruments["sci"].direction == "higher_is_better"
    others = {code for code, i in instruments.items() if i.direction == "lower_is_better"}
    assert others == SHIPPED_INSTRUMENTS - {"sci"}


def test_every_shipped_exercise_has_a_form_and_accepts_an_empty_draft() -> None:
    for program in library().programs.values():
        for module in program.modules.values():
            for spec in module.exercises:
                where = f"{program.slug}/{module.key}/{spec.id}"
                assert field_schema(spec.type, spec), where
                assert isinstance(validate_draft(spec.type, {}, spec), dict), where


@pytest.mark.parametrize("slug", PROGRAM_SLUGS)
def test_programs_ask_phq9_weekly(slug: str) -> None:
    program = library().program(slug)
    assert "phq9" in program.instruments.weekly
