"""Every registered route x every kind of caller, checked against the policy.

New routes fall under this automatically: the route list comes from the app itself, and
a route without a guard fails ``test_every_route_is_classified``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.accounts.policy import Access, all_api_routes, guard_of
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import World, build_world, create_user
from tests.inbox.helpers import create_absence, create_message, create_snippet
from tests.questionnaires.helpers import create_alert

_ROUTES = sorted(
    {
        (info.path, method)
        for info in all_api_routes(create_app(make_settings()))
        for method in info.methods
        if method != "HEAD"
    }
)

ALLOWED_ROLES = {
    Access.PUBLIC: {"anonymous", "admin", "therapist", "patient"},
    Access.AUTHENTICATED: {"admin", "therapist", "patient"},
    Access.LOGIN_IN_PROGRESS: {"admin", "therapist", "patient"},
    Access.PATIENT: {"patient"},
    Access.THERAPIST: {"therapist"},
    Access.ADMIN: {"admin"},
    Access.STAFF: {"admin", "therapist"},
    # The operator's bearer token, never a user session (tests/web/test_metrics.py).
    Access.OPERATOR: set(),
}


@dataclass
class Caller:
    name: str
    role: str
    email: str | None
    # Whether this caller may see world.enrollment (object-level rule).
    owns_enrollment: bool
    # Whether this caller owns world.therapist's own rows (private snippets, absences);
    # a covering colleague sees the patients but not these.
    owns_therapist_rows: bool | None = None

    def owns(self, path: str) -> bool:
        if "{snippet_id}" in path or "{absence_id}" in path:
            return (
                self.owns_enrollment
                if self.owns_therapist_rows is None
                else self.owns_therapist_rows
            )
        return self.owns_enrollment


def callers(world: World, covering: User) -> list[Caller]:
    return [
        Caller("anonymous", "anonymous", None, False),
        Caller("patient", "patient", world.patient_user.email, True),
        Caller("another patient", "patient", world.other_patient_user.email, False),
        Caller("therapist", "therapist", world.therapist.email, True),
        Caller("another therapist", "therapist", world.other_therapist.email, False),
        Caller("covering therapist", "therapist", covering.email, True, owns_therapist_rows=False),
        Caller(
            "another clinic's therapist", "therapist", world.other_clinic_therapist.email, False
        ),
        Caller("admin", "admin", world.admin.email, True),
        Caller("another clinic's admin", "admin", world.other_admin.email, False),
    ]


POLICY_CODES = {
    "not_authenticated",
    "mfa_required",
    "forbidden",
    "mfa_setup_required",
    "unclassified_route",
}


def policy_denied(response: httpx.Response, is_api: bool, method: str) -> bool:
    """Whether the answer is the policy saying no (as opposed to a domain answer like a bad code)."""
    if response.status_code == 403:
        return True
    if is_api:
        return response.status_code == 401 and response.json().get("code") in POLICY_CODES
    redirected_to_login = response.status_code == 303 and response.headers["location"].startswith(
        ("/login?", "/account/2fa")
    )
    return method == "GET" and redirected_to_login


def fill_path(
    path: str, world: World, *, alert_id: int = 0, rows: dict[str, int] | None = None
) -> str:
    rows = rows or {}
    samples = {
        "alert_id": str(alert_id),
        # Rows of world.enrollment / world.therapist, created by inbox_rows() when a path needs them.
        "message_id": str(rows.get("message_id", 0)),
        "snippet_id": str(rows.get("snippet_id", 0)),
        "absence_id": str(rows.get("absence_id", 0)),
        "code": "phq9",
        "enrollment_id": str(world.enrollment.id),
        "token": "no-such-invitation",
        "slug": "depression",
        "program": "depression",
        "module": "01-understanding-low-mood",
        "exercise": "my-circle",
        "change_id": "0",  # ids start at 1: owners get 422, callers who may not see the enrollment 404
        "notification_id": "0",  # no such notification: everyone allowed gets 404
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in samples, f"add a sample value for path parameter {{{name}}} in {path}"
        return samples[name]

    return re.sub(r"\{([^}]+)\}", value, path)


async def inbox_rows(db, app, clock, world: World, path: str) -> dict[str, int]:
    """A message in world.enrollment's thread, a private snippet and an upcoming absence of
    world.therapist: those who may see world.enrollment own them, everyone else gets 404."""
    rows: dict[str, int] = {}
    if "{message_id}" in path:
        message = await create_message(db, world.enrollment, world.therapist, app.state.cipher)
        rows["message_id"] = message.id
    if "{snippet_id}" in path:
        snippet = await create_snippet(db, world.therapist, at=clock.now())
        rows["snippet_id"] = snippet.id
    if "{absence_id}" in path:
        # Upcoming, so it does not yet let the colleague see world.therapist's patients.
        absence = await create_absence(
            db, world.therapist, world.other_therapist, starts_at=clock.now() + timedelta(days=1)
        )
        rows["absence_id"] = absence.id
    return rows


async def covering_colleague(db, clock, world: World) -> User:
    """A third therapist of the clinic, covering world.therapist during an absence that is on now."""
    covering = await create_user(db, world.clinic, Role.THERAPIST, clock.now())
    await create_absence(
        db, world.therapist, covering, starts_at=clock.now() - timedelta(hours=1), days=7
    )
    return covering


async def client_as(
    app: FastAPI, db, settings, clock, world: World, caller: Caller, covering: User
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    if caller.email is None:
        return client
    user = next(
        u
        for u in (
            world.admin,
            world.therapist,
            world.other_therapist,
            world.patient_user,
            world.other_patient_user,
            world.other_admin,
            world.other_clinic_therapist,
            covering,
        )
        if u.email == caller.email
    )
    token, session = await accounts_service.create_session(
        db,
        user,
        settings=settings,
        now=clock.now(),
        ip_address=None,
        user_agent=None,
        mfa_verified=True,
    )
    await db.commit()
    client.cookies.set("tuki_session", token)
    client.headers["X-CSRF-Token"] = session.csrf_token
    return client


def test_every_route_is_classified():
    app = create_app(make_settings())
    routes = all_api_routes(app)
    assert len(routes) > 30
    unclassified = [r.path for r in routes if guard_of(r.route) is None]
    assert unclassified == []


async def test_an_unclassified_route_is_denied_at_runtime(database, clock, client_factory):
    app = create_app(make_settings(), database=database, clock=clock)
    extra = APIRouter()

    @extra.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "data"}

    app.include_router(extra)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    r = await client.get("/api/v1/forgotten")
    assert r.status_code == 403 and r.json()["code"] == "unclassified_route"


@pytest.mark.parametrize(("path", "method"), _ROUTES, ids=[f"{m} {p}" for p, m in _ROUTES])
async def test_route_answers_each_caller_as_the_policy_says(path, method, app, db, settings, clock):
    route = next(r.route for r in all_api_routes(app) if r.path == path and method in r.methods)
    guard = guard_of(route)
    assert guard is not None
    world = await build_world(db, clock.now())
    covering = await covering_colleague(db, clock, world)
    alert_id = await create_alert(db, world.enrollment) if "{alert_id}" in path else 0
    rows = await inbox_rows(db, app, clock, world, path)
    url = fill_path(path, world, alert_id=alert_id, rows=rows)
    is_api = path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")
    object_scoped = any(
        f"{{{name}}}" in path
        for name in ("enrollment_id", "alert_id", "message_id", "snippet_id", "absence_id")
    )
    for caller in callers(world, covering):
        client = await client_as(app, db, settings, clock, world, caller, covering)
        kwargs = {}
        if method in ("POST", "PUT", "PATCH"):
            kwargs = {"json": {}} if is_api else {"data": {}}
        response = await client.request(method, url, follow_redirects=False, **kwargs)
        allowed = caller.role in ALLOWED_ROLES[guard.access]
        label = f"{caller.name}: {method} {url} -> {response.status_code}"
        if not allowed:
            if caller.role == "anonymous":
                if is_api:
                    assert response.status_code == 401, label
                else:
                    assert response.status_code == 303 and response.headers["location"].startswith(
                        "/login"
                    ), label
            else:
                assert response.status_code == 403, label
            continue
        assert not policy_denied(response, is_api, method), label
        assert response.status_code < 500, label
        if object_scoped:
            if caller.owns(path):
                assert response.status_code != 404, label
            else:
                assert response.status_code == 404, label
