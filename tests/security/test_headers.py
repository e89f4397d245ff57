"""Protective headers on every response: every GET route as every role, errors and redirects."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends

from app.accounts.policy import PUBLIC, all_api_routes
from app.main import create_app
from tests.accounts.test_policy_matrix import fill_path
from tests.conftest import make_settings
from tests.factories import build_world
from tests.security.helpers import client_for

BASE = "https://test"


def assert_protected(response: httpx.Response, label: str) -> None:
    h = response.headers
    csp = h.get("content-security-policy", "")
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp, label
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src, label
    assert h.get("x-content-type-options") == "nosniff", label
    assert h.get("x-frame-options") == "DENY", label
    assert h.get("referrer-policy") in (
        "no-referrer",
        "same-origin",
        "strict-origin-when-cross-origin",
    ), label
    hsts = h.get("strict-transport-security", "")
    assert hsts.startswith("max-age=") and "includeSubDomains" in hsts, label
    assert int(hsts.split(";")[0].split("=")[1]) >= 31536000, label
    if not response.url.path.startswith("/static/"):
        assert h.get("cache-control") == "no-store", label
    if response.content:
        content_type = h.get("content-type", "")
        json_type = content_type.split(";")[0].endswith(("/json", "+json"))
        assert "charset=" in content_type or json_type, label


@pytest.fixture
def https_app(database, clock):
    app = create_app(make_settings(base_url=BASE), database=database, clock=clock)
    extra = APIRouter()

    @extra.get("/api/v1/test-boom", dependencies=[Depends(PUBLIC)])
    async def boom() -> None:
        raise RuntimeError("deliberate failure")

    @extra.get("/test-boom-page", dependencies=[Depends(PUBLIC)])
    async def boom_page() -> None:
        raise RuntimeError("deliberate failure")

    app.include_router(extra)
    return app


async def test_every_get_route_as_every_role(https_app, db, clock):
    world = await build_world(db, clock.now())
    paths = sorted(
        {
            fill_path(info.path, world)
            for info in all_api_routes(https_app)
            if "GET" in info.methods and "test-boom" not in info.path
        }
    )
    assert len(paths) > 20
    users = [None, world.patient_user, world.therapist, world.admin]
    seen_statuses: set[int] = set()
    for user in users:
        client = await client_for(https_app, db, clock, user, base_url=BASE)
        for path in paths:
            response = await client.get(path, follow_redirects=False)
            seen_statuses.add(response.status_code)
            assert_protected(response, f"{user and user.role} GET {path} {response.status_code}")
        await client.aclose()
    assert {200, 303, 401, 403, 404} <= seen_statuses


async def test_error_answers_carry_the_headers_too(https_app, db, clock, settings):
    world = await build_world(db, clock.now())
    anonymous = await client_for(https_app, db, clock, None, base_url=BASE)
    admin = await client_for(https_app, db, clock, world.admin, base_url=BASE)
    cases = [
        (anonymous, "GET", "/no-such-page", None, 404),
        (anonymous, "GET", "/api/v1/no-such-thing", None, 404),
        (admin, "DELETE", "/api/v1/me", None, 405),
        (anonymous, "POST", "/api/v1/auth/login", {"email": 5}, 422),
        (anonymous, "GET", "/api/v1/test-boom", None, 500),
        (anonymous, "GET", "/test-boom-page", None, 500),
        (anonymous, "GET", "/static/app.css", None, 200),
        (anonymous, "GET", "/static/no-such-file.css", None, 404),
        (anonymous, "GET", "/admin", None, 303),
    ]
    for client, method, path, body, status in cases:
        response = await client.request(method, path, json=body, follow_redirects=False)
        assert response.status_code == status, (method, path, response.status_code)
        assert_protected(response, f"{method} {path}")
        assert "deliberate failure" not in response.text
        assert "Traceback" not in response.text
    for _ in range(settings.login_max_failures_per_account + 1):
        throttled = await anonymous.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": "wrong-wrong-1"}
        )
    assert throttled.status_code == 429 and throttled.headers["retry-after"]
    assert_protected(throttled, "429 login")
