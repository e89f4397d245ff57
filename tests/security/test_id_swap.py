"""Id-swap sweep: on every route with an id in its path, a caller who may not see the object
gets exactly the answer a missing id gets, and nothing changes in the database."""

from __future__ import annotations

import re

import pytest

from app.accounts.policy import all_api_routes, guard_of
from app.main import create_app
from app.reminders.models import Notification
from tests.accounts.test_policy_matrix import ALLOWED_ROLES, fill_path, inbox_rows
from tests.conftest import make_settings
from tests.factories import World, build_world
from tests.questionnaires.helpers import create_alert
from tests.security.helpers import client_for, snapshot

MISSING = "987654321"
ID_PARAM = re.compile(r"\{(\w+_id)\}")

_ID_ROUTES = sorted(
    (info.path, method)
    for info in all_api_routes(create_app(make_settings()))
    for method in info.methods
    if method != "HEAD" and ID_PARAM.search(info.path)
)


def strangers(world: World):
    """Callers with no claim on world.enrollment, world.therapist's rows or world.patient_user's."""
    return [
        world.other_patient_user,
        world.other_therapist,
        world.other_clinic_therapist,
        world.other_admin,
    ]


def missing_version(path: str, world: World) -> str:
    """The route's URL with every id parameter pointing at a row that does not exist."""
    return fill_path(ID_PARAM.sub(MISSING, path), world)


def same_answer(a, b) -> bool:
    if a.status_code != b.status_code:
        return False
    if a.headers.get("content-type", "").startswith("application/json"):
        return a.json() == b.json()
    return a.text == b.text and a.headers.get("location") == b.headers.get("location")


@pytest.mark.parametrize(("path", "method"), _ID_ROUTES, ids=[f"{m} {p}" for p, m in _ID_ROUTES])
async def test_foreign_id_answers_like_a_missing_one(path, method, app, db, clock):
    route = next(r.route for r in all_api_routes(app) if r.path == path and method in r.methods)
    guard = guard_of(route)
    assert guard is not None
    world = await build_world(db, clock.now())
    alert_id = await create_alert(db, world.enrollment) if "{alert_id}" in path else 0
    rows = await inbox_rows(db, app, clock, world, path)
    if "{notification_id}" in path:
        notification = Notification(
            user_id=world.patient_user.id, text="A new module is open", link="/patient"
        )
        db.add(notification)
        await db.commit()
        rows["notification_id"] = notification.id
    url = fill_path(path, world, alert_id=alert_id, rows=rows)
    if "{notification_id}" in path:
        url = url.replace("/0/", f"/{rows['notification_id']}/")
    missing = missing_version(path, world)
    assert missing != url
    is_api = path.startswith("/api/")
    checked = 0
    for user in strangers(world):
        if str(user.role) not in ALLOWED_ROLES[guard.access]:
            continue
        client = await client_for(app, db, clock, user)
        kwargs = {}
        if method in ("POST", "PUT", "PATCH"):
            kwargs = {"json": {}} if is_api else {"data": {}}
        before = await snapshot(db)
        foreign = await client.request(method, url, follow_redirects=False, **kwargs)
        absent = await client.request(method, missing, follow_redirects=False, **kwargs)
        after = await snapshot(db)
        label = f"{user.email}: {method} {url} -> {foreign.status_code}, missing -> {absent.status_code}"
        assert foreign.status_code == 404, label
        assert same_answer(foreign, absent), label
        changed = [t for t in before if before[t] != after[t]]
        assert changed == [], label
        await client.aclose()
        checked += 1
    assert checked > 0
