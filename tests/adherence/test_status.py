"""Adherence status moves at each threshold, on a controlled clock, through the real API."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update

from app.adherence import status as rules
from app.adherence.models import AdherenceThreshold, EnrollmentRollup
from app.adherence.service import EventKind
from app.clinics.models import Enrollment, EnrollmentStatus
from app.programs.models import ModuleProgress
from tests.adherence.helpers import log
from tests.factories import build_world, login
from tests.perf.seed import add_caseload

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


async def _mixed_enrollments(db, app, world, now: datetime, count: int) -> list[int]:
    """``count`` enrollments spread over every state the rules distinguish: each enrollment
    status, started or not, paused or closed with and without a date, no rollup or one with
    any activity age and any number of modules done, paths laid out, shortened or not."""
    rng = random.Random(8)
    ids = await add_caseload(
        db, world.clinic, world.therapist, now, count, cipher=app.state.cipher, events_each=1
    )
    programs = sorted(app.state.library.programs)
    statuses = [s.value for s in EnrollmentStatus]
    for i, eid in enumerate(ids):
        created = now - timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 86_399))
        activated = None if i % 7 == 0 else created + timedelta(hours=rng.randint(0, 72))
        await db.execute(
            update(Enrollment)
            .where(Enrollment.id == eid)
            .values(
                program=programs[i % len(programs)],
                status=statuses[i % len(statuses)],
                created_at=created,
                activated_at=activated,
                status_changed_at=(
                    None if i % 5 == 0 else created + timedelta(days=rng.randint(0, 60))
                ),
                ended_at=None if i % 3 == 0 else created + timedelta(days=rng.randint(0, 90)),
            )
        )
        if i % 6 == 0:
            await db.execute(delete(EnrollmentRollup).where(EnrollmentRollup.enrollment_id == eid))
            continue
        last = None if i % 4 == 0 else now - timedelta(seconds=rng.randint(0, 40 * 86_400))
        await db.execute(
            update(EnrollmentRollup)
            .where(EnrollmentRollup.enrollment_id == eid)
            .values(last_activity_at=last, modules_completed=rng.randint(0, 12))
        )
        on_path = rng.choice((0, 0, 3, 8))
        if on_path:
            await db.execute(
                insert(ModuleProgress),
                [
                    {
                        "enrollment_id": eid,
                        "program": programs[i % len(programs)],
                        "module_key": f"m{n}",
                        "position": n,
                        "hidden_at": now if n % 4 == 3 else None,
                    }
                    for n in range(on_path)
                ],
            )
    await db.flush()
    db.expire_all()
    return ids


@pytest.mark.parametrize("clinic_thresholds", [False, True], ids=["settings", "clinic"])
async def test_python_status_agrees_with_the_sql_status(
    db, app, clock, settings, clinic_thresholds
):
    """:func:`status.classify` (one enrollment, in Python) and the SQL expression (lists)
    give the same status, module total and idle time for every enrollment, at moments on
    and around the thresholds, with the cached (bound "now") and the one-off expression."""
    now = clock.now()
    world = await build_world(db, now - timedelta(days=130))
    clinic_id = world.clinic.id
    ids = await _mixed_enrollments(db, app, world, now, 84)
    if clinic_thresholds:
        db.add(
            AdherenceThreshold(
                clinic_id=clinic_id,
                falling_behind_days=3,
                inactive_days=9,
                dropout_days=20,
                pace_slack_modules=0,
                updated_at=now,
            )
        )
        await db.flush()
    library = app.state.library
    stored = await db.get(AdherenceThreshold, clinic_id)
    thresholds = rules.thresholds_of(stored) if stored else rules.default_thresholds(settings)
    on_path = (
        select(func.count())
        .where(ModuleProgress.enrollment_id == Enrollment.id, ModuleProgress.hidden_at.is_(None))
        .correlate(Enrollment)
        .scalar_subquery()
    )
    seen: set[str] = set()
    for moment in (now, now + timedelta(days=7), now + timedelta(days=14, seconds=-1)):
        cached = rules.cached_columns(settings, library)
        one_off = rules.columns(settings, library, moment)
        for cols, params in ((cached, rules.now_params(moment)), (one_off, {})):
            stmt = rules.with_rollup(
                select(
                    Enrollment,
                    EnrollmentRollup,
                    on_path.label("on_path"),
                    cols.status,
                    cols.modules_total,
                    cols.idle_seconds,
                ).select_from(Enrollment)
            ).where(Enrollment.id.in_(ids))
            rows = (await db.execute(stmt, params)).all()
            assert len(rows) == len(ids)
            for enrollment, rollup, path, sql_status, sql_total, sql_idle in rows:
                got = rules.classify(
                    enrollment=enrollment,
                    rollup=rollup,
                    thresholds=thresholds,
                    modules_on_path=int(path or 0),
                    library=library,
                    now=moment,
                )
                assert (got.status.value, got.modules_total, got.idle_seconds) == (
                    sql_status,
                    int(sql_total),
                    int(sql_idle),
                ), (enrollment.id, enrollment.status, moment)
                seen.add(sql_status)
    assert seen == {s.value for s in rules.AdherenceStatus}, seen
