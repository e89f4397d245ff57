"""Error responses documented on API routes, so clients and fuzzers know what to expect."""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]

ERRORS: Responses = {
    401: {"description": "Not logged in"},
    403: {"description": "Not allowed, or missing CSRF token"},
    422: {"description": "Invalid input; `detail` names each field"},
}


def with_errors(**extra: str) -> Responses:
    """The common errors plus route-specific ones, e.g. ``with_errors(e404="Not found")``."""
    responses: Responses = dict(ERRORS)
    for key, description in extra.items():
        responses[int(key.removeprefix("e"))] = {"description": description}
    return responses
