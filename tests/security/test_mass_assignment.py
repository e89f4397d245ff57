"""Mass assignment: every JSON body refuses fields it does not declare, and nothing is written."""

from __future__ import annotations

import pytest

from app.accounts.policy import Access, all_api_routes, guard_of
from app.main import create_app
from tests.accounts.test_policy_matrix import fill_path, inbox_rows
from tests.conftest import make_settings
from tests.factories import build_world
from tests.questionnaires.helpers import create_alert
from tests.security.helpers import client_for, snapshot

SMUGGLED = (
    "role",
    "clinic_id",
    "user_id",
    "patient_id",
    "therapist_id",
    "password_hash",
    "version",
)

_APP = create_app(make_settings())
_SCHEMA = _APP.openapi()


def _resolve(schema: dict[str, object]) -> dict[str, object]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _SCHEMA["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


def _json_body(path: str, method: str) -> tuple[dict[str, object], dict[str, object]] | None:
    """The declared properties of a route's JSON body, and the minimum to pick a union variant."""
    operation = _SCHEMA["paths"][path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    schema = _resolve(content["application/json"]["schema"])
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, dict):
        tag, ref = next(iter(discriminator["mapping"].items()))
        variant = _resolve({"$ref": ref})
        return dict(variant.get("properties", {})), {discriminator["propertyName"]: tag}
    return dict(schema.get("properties", {})), {}


def _json_body_properties(path: str, method: str) -> dict[str, object] | None:
    body = _json_body(path, method)
    return None if body is None else body[0]


_JSON_ROUTES = sorted(
    (info.path, method)
    for info in all_api_routes(_APP)
    for method in info.methods
    if method in ("POST", "PUT", "PATCH")
    and info.path in _SCHEMA["paths"]
    and _json_body_properties(info.path, method) is not None
)


def test_there_are_json_bodies_to_check():
    assert len(_JSON_ROUTES) > 15


@pytest.mark.parametrize(
    ("path", "method"), _JSON_ROUTES, ids=[f"{m} {p}" for p, m in _JSON_ROUTES]
)
async def test_undeclared_fields_are_refused(path, method, app, db, clock):
    route = next(r.route for r in all_api_routes(app) if r.path == path and method in r.methods)
    guard = guard_of(route)
    assert guard is not None
    world = await build_world(db, clock.now())
    alert_id = await create_alert(db, world.enrollment) if "{alert_id}" in path else 0
    rows = await inbox_rows(db, app, clock, world, path)
    url = fill_path(path, world, alert_id=alert_id, rows=rows)
    caller = {
        Access.PUBLIC: None,
        Access.PATIENT: world.patient_user,
        Access.AUTHENTICATED: world.patient_user,
        Access.THERAPIST: world.therapist,
        Access.STAFF: world.therapist,
        Access.ADMIN: world.admin,
        Access.LOGIN_IN_PROGRESS: world.admin,
    }[guard.access]
    client = await client_for(app, db, clock, caller)
    body = _json_body(path, method)
    assert body is not None
    declared, base = body
    smuggled = [name for name in SMUGGLED if name not in declared]
    assert smuggled
    for name in smuggled:
        before = await snapshot(db)
        response = await client.request(method, url, json={**base, name: 1})
        after = await snapshot(db)
        label = f"{method} {url} with {name} -> {response.status_code} {response.text[:200]}"
        assert response.status_code == 422, label
        errors = response.json()["detail"]
        assert any(
            e["field"].rsplit(".", 1)[-1] == name and e["type"] == "extra_forbidden" for e in errors
        ), label
        assert before == after, label
    await client.aclose()
