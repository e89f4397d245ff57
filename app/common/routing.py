"""Routers that turn a request away in one string test when none of their routes could match."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope


class Router(APIRouter):
    """An ``APIRouter`` that checks a path's literal start before trying its routes.

    FastAPI tries an included router's routes one regular expression at a time, and every
    router comes in turn, so a page request (the page routers come after the API's) was
    matched against all 127 routes: about a quarter of a millisecond of CPU per request
    (benchmarks/README.md, scenario A). All of a router's path patterns joined into one
    expression reject a foreign path in a single test.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._any_path: re.Pattern[str] | None = None

    def mounted_at(self, prefix: str) -> Router:
        """Record where the app includes this router, once all its routes are declared."""
        patterns = [getattr(route, "path_regex", None) for route in self.routes]
        if not patterns or None in patterns:
            self._any_path = None  # a route without a path pattern: try them one by one
            return self
        # Each pattern is ^…$ with named groups; the names would clash once joined.
        bodies = {_UNNAMED.sub("(?:", p.pattern[1:-1]) for p in patterns if p is not None}
        self._any_path = re.compile(
            "^" + re.escape(prefix) + "(?:" + "|".join(sorted(bodies)) + ")$"
        )
        return self

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        any_path = self._any_path
        if any_path is not None:
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if any_path.match(path) is None:
                return Match.NONE, {}
        return super().matches(scope)


_UNNAMED = re.compile(r"\(\?P<\w+>")


def include(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Include ``router`` at ``prefix``, telling a :class:`Router` where it lives."""
    if isinstance(router, Router):
        router.mounted_at(prefix)
    app.include_router(router, prefix=prefix)
