"""The nine programs Tuki offers. Titles here stand in until the content library is loaded."""

from __future__ import annotations

PROGRAMS: dict[str, str] = {
    "depression": "Depression",
    "gad": "Generalised anxiety",
    "ocd": "Obsessive-compulsive disorder",
    "bipolar": "Bipolar disorder",
    "social-anxiety": "Social anxiety",
    "bulimia": "Bulimia",
    "alcohol": "Alcohol",
    "panic": "Panic disorder",
    "insomnia": "Insomnia",
}


def is_program(slug: str) -> bool:
    return slug in PROGRAMS


def program_title(slug: str) -> str:
    return PROGRAMS.get(slug, slug)
