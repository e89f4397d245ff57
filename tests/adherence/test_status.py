"""Adherence status moves at each threshold, on a controlled clock, through the real API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.adherence.service import EventKind
from app.clinics.models import EnrollmentStatus
from tests.adherence.helpers import log
from tests.factories import build_world, login

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


async def _status(client, enrollment_id: int) -> dict:
    """Log in again first: moving the clock by days ends the staff session (idle timeout)."""
    await login(client, client.email)
    response = await client.get(f"/api/v1/enrollments/{enrollment_id}/adherence")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def world(db, clock):
    return await build_world(db, clock.now())


async def test_inactivity_moves_through_each_threshold(client, db, clock, world):
    """Defaults: 7 days falling behind, 14 inactive, 28 dropped out (a second earlier: not yet)."""
    await log(db, world.enrollment, EventKind.LOGIN, clock.now())
    await db.commit()
    client.email = world.therapist.email
    start = clock.now()
    expected = [
        (7 * DAY - SECOND, "on_track"),
        (7 * DAY, "falling_behind"),
        (14 * DAY - SECOND, "falling_behind"),
        (14 * DAY, "inactive"),
        (28 * DAY - SECOND, "inactive"),
        (28 * DAY, "dropped_out"),
    ]
    for offset, status in expected:
        clock._now = start + offset
        body = await _status(client, world.enrollment.id)
        assert body["status"] == status, (offset, body["status"])
    assert body["days_since_activity"] == 28
    assert body["thresholds"]["source"] == "settings"


async def test_activity_resets_the_clock(client, db, clock, world):
    client.email = world.therapist.email
    clock.advance(10 * DAY)
    assert (await _status(client, world.enrollment.id))["status"] == "falling_behind"
    await log(db, world.enrollment, EventKind.MODULE_OPENED, clock.now(), module="01-x")
    await db.commit()
    assert (await _status(client, world.enrollment.id))["status"] == "on_track"


async def test_falling_behind_the_programs_pace(client, db, clock, world):
    """Depression: 10 modules in 12 weeks. Daily logins but no module done: on day 16 the pace
    expects 1 module (16*10/84 = 1.9, floor 1) and one module of slack is allowed; on day 17 it
    expects 2, so the patient is more than one module behind."""
    client.email = world.therapist.email
    start = clock.now()
    for day in range(0, 18):
        await log(db, world.enrollment, EventKind.LOGIN, start + day * DAY)
    await db.commit()
    clock._now = start + 16 * DAY
    assert (await _status(client, world.enrollment.id))["status"] == "on_track"
    clock._now = start + 17 * DAY
    assert (await _status(client, world.enrollment.id))["status"] == "falling_behind"
    await log(db, world.enrollment, EventKind.MODULE_COMPLETED, clock.now(), module="01-x")
    await db.commit()
    body = await _status(client, world.enrollment.id)
    assert body["status"] == "on_track"
    assert (body["modules_completed"], body["modules_total"]) == (1, 10)


async def test_all_modules_done_is_completed_and_marked_states_win(client, db, clock, world):
    client.email = world.therapist.email
    for n in range(10):
        await log(db, world.enrollment, EventKind.MODULE_COMPLETED, clock.now(), module=f"m{n}")
    await db.commit()
    assert (await _status(client, world.enrollment.id))["status"] == "completed"
    clock.advance(60 * DAY)  # completers never turn into dropouts
    assert (await _status(client, world.enrollment.id))["status"] == "completed"

    other = world.other_enrollment
    other.status = EnrollmentStatus.DROPPED
    await db.commit()
    client.email = world.admin.email
    assert (await _status(client, other.id))["status"] == "dropped_out"


async def test_a_pause_stops_the_clock(client, db, clock, world):
    client.email = world.therapist.email
    world.enrollment.status = EnrollmentStatus.PAUSED
    world.enrollment.status_changed_at = clock.now() + 3 * DAY
    await db.commit()
    clock.advance(60 * DAY)
    body = await _status(client, world.enrollment.id)
    assert body["status"] == "on_track"
    assert body["days_since_activity"] == 3


async def test_clinic_thresholds_override_settings(client, db, clock, world):
    client.email = world.admin.email
    await login(client, world.admin.email)
    r = await client.post(
        "/admin/reports/thresholds",
        data={
            "falling_behind_days": "2",
            "inactive_days": "4",
            "dropout_days": "6",
            "pace_slack_modules": "3",
            "csrf_token": client.headers["X-CSRF-Token"],
        },
    )
    assert r.status_code == 303, r.text
    clock.advance(2 * DAY)
    body = await _status(client, world.enrollment.id)
    assert body["status"] == "falling_behind"
    assert body["thresholds"]["source"] == "clinic"
    clock.advance(4 * DAY)
    assert (await _status(client, world.enrollment.id))["status"] == "dropped_out"
    # Another clinic keeps the defaults.
    client.email = world.other_admin.email
    assert (await _status(client, world.other_clinic_enrollment.id))["status"] == "on_track"


async def test_thresholds_must_increase(client, db, clock, world):
    await login(client, world.admin.email)
    r = await client.post(
        "/admin/reports/thresholds",
        data={
            "falling_behind_days": "9",
            "inactive_days": "4",
            "dropout_days": "6",
            "pace_slack_modules": "1",
            "csrf_token": client.headers["X-CSRF-Token"],
        },
    )
    assert r.status_code == 422
    assert "longer than the one before" in r.text
