"""Routers turn away a foreign path in one test, and still find every route of their own."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match

from app.accounts.policy import all_api_routes
from app.common.routing import Router, include
from app.main import create_app


def _scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}


def _sample_router() -> Router:
    router = Router()

    @router.get("/enrollments/{enrollment_id}/adherence")
    async def adherence(enrollment_id: int) -> dict[str, int]:
        return {"id": enrollment_id}

    @router.get("/reports/adherence")
    async def report() -> dict[str, str]:
        return {}

    return router


def test_a_foreign_path_never_reaches_the_routes(monkeypatch):
    router = _sample_router()
    app = FastAPI()
    include(app, router, "/api/v1")
    tried: list[str] = []
    for route in router.routes:
        original = route.matches

        def spy(scope: Any, original: Any = original, path: str = route.path) -> Any:
            tried.append(path)
            return original(scope)

        monkeypatch.setattr(route, "matches", spy)

    assert router.matches(_scope("/therapist/patients/4"))[0] is Match.NONE
    assert router.matches(_scope("/api/v1/enrollments/4/timeline"))[0] is Match.NONE
    assert tried == []


def test_its_own_paths_still_match_and_wrong_methods_stay_partial():
    router = _sample_router()
    app = FastAPI()
    include(app, router, "/api/v1")
    included = next(r for r in app.router.routes if hasattr(r, "original_router"))
    scope = _scope("/api/v1/enrollments/4/adherence")
    assert included.matches(scope)[0] is Match.FULL
    assert included.matches(_scope("/api/v1/reports/adherence", "POST"))[0] is Match.PARTIAL


def test_every_route_of_the_app_is_reachable_by_its_own_path():
    app = create_app()
    routers = [r for r in app.router.routes if hasattr(r, "original_router")]
    assert all(isinstance(r.original_router, Router) for r in routers)
    for info in all_api_routes(app):
        concrete = re.sub(r"\{[^}]+\}", "7", info.path)
        method = sorted(info.route.methods or {"GET"})[0]
        found = [r for r in routers if r.matches(_scope(concrete, method))[0] is Match.FULL]
        assert found, f"{method} {info.path} is not reachable"
