"""Caseload and timeline: what they show, what they cost, and that they never scan the log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.accounts.models import Role
from app.adherence.service import EventKind
from tests.adherence.helpers import log, message, score
from tests.conftest import TEST_DATABASE_URL
from tests.factories import build_world, create_clinic, create_enrollment, create_user, login
from tests.querycount import count_statements

DAY = timedelta(days=1)


async def test_caseload_shows_status_progress_trend_and_contact(client, db, clock):
    world = await build_world(db, clock.now())
    e = world.enrollment
    await log(db, e, EventKind.LOGIN, clock.now())
    await log(db, e, EventKind.MODULE_COMPLETED, clock.now(), module="01-understanding-low-mood")
    await message(db, e, clock.now(), role="patient")
    await message(db, e, clock.now() + DAY, role="therapist")
    for week, total in enumerate((19, 15, 11)):
        await score(db, e, clock.now() + week * 7 * DAY, total, week=week)
    await db.commit()
    clock.advance(9 * DAY)
    await login(client, world.therapist.email)
    r = await client.get("/therapist/caseload")
    assert r.status_code == 200
    page = r.text
    assert world.patient_user.full_name in page
    assert world.other_patient_user.full_name not in page  # another therapist's patient
    assert "Falling behind" in page and "1 of 10" in page
    assert ">9<" in page  # days since activity
    assert 'class="sparkline"' in page and "19, 15, 11" in page  # trend with its text
    assert "(8 days ago)" in page  # last heard from the therapist
    assert "Caseload" in page  # nav link
    r = await client.get("/therapist/caseload", params={"status": "on_track"})
    assert world.patient_user.full_name not in r.text


async def test_timeline_lists_everything_and_draws_bands(client, db, clock):
    world = await build_world(db, clock.now())
    e = world.enrollment
    await log(db, e, EventKind.MODULE_OPENED, clock.now(), module="01-understanding-low-mood")
    await log(db, e, EventKind.QUESTIONNAIRE_COMPLETED, clock.now(), instrument="phq9")
    await message(db, e, clock.now(), role="therapist", functions=("alliance",))
    await log(
        db,
        e,
        EventKind.REMINDER_SENT,
        clock.now(),
        role="system",
        rule="inactivity",
        channel="email",
    )
    await score(db, e, clock.now(), 17, occasion="baseline", week=0)
    await db.commit()
    await login(client, world.therapist.email)
    r = await client.get(f"/therapist/patients/{e.id}/timeline")
    assert r.status_code == 200
    assert "Opened a module: Welcome, and understanding low mood" in r.text
    assert "Therapist sent a message: alliance" in r.text
    assert "Reminder sent (inactivity, email)" in r.text
    assert "Severity bands: minimal 0 to 4" in r.text  # the chart's text alternative
    assert len(re.findall(r"<rect ", r.text)) >= 5  # the bands drawn in
    other = await client.get(f"/therapist/patients/{world.other_enrollment.id}/timeline")
    assert other.status_code == 404


async def test_timeline_pages_through_the_log(client, db, clock):
    world = await build_world(db, clock.now())
    for i in range(130):
        await log(
            db,
            world.enrollment,
            EventKind.PAGE_VIEWED,
            clock.now() + i * timedelta(minutes=1),
            module="m",
            page=i,
        )
    await db.commit()
    await login(client, world.therapist.email)
    first = await client.get(f"/therapist/patients/{world.enrollment.id}/timeline")
    assert first.text.count("Read a page") == 100
    cursor = re.search(r'href="\?before=(\d+)"', first.text).group(1)
    second = await client.get(f"/therapist/patients/{world.enrollment.id}/timeline?before={cursor}")
    assert second.text.count("Read a page") == 30 and "?before=" not in second.text
    bad = await client.get(f"/therapist/patients/{world.enrollment.id}/timeline?before=abc")
    assert bad.status_code == 200


async def _caseload_of(db, clock, n):
    clinic = await create_clinic(db, clock.now())
    therapist = await create_user(db, clinic, Role.THERAPIST, clock.now())
    for _ in range(n):
        _, _, e = await create_enrollment(db, clinic, therapist, clock.now())
        await log(db, e, EventKind.LOGIN, clock.now())
        await score(db, e, clock.now(), 12)
    await db.commit()
    return therapist


async def test_caseload_statement_count_does_not_grow(client_factory, db, clock, engine):
    counts = []
    for n in (5, 50):
        therapist = await _caseload_of(db, clock, n)
        client = client_factory()
        await login(client, therapist.email)
        with count_statements(engine) as statements:
            r = await client.get("/therapist/caseload")
        assert r.status_code == 200 and r.text.count('class="sparkline"') == n
        counts.append(statements.count)
        assert not any("adherence_event" in s for s in statements.statements)
    assert counts[0] == counts[1], counts


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="EXPLAIN plans are PostgreSQL's; SQLite has no comparable planner output to gate on",
)
@pytest.mark.parametrize("page", ["caseload", "timeline", "status"])
async def test_no_sequential_scan_of_the_event_log(client, db, clock, engine, page):
    """Capture every statement the page sends; none may read adherence_event by Seq Scan,
    even with sequential scans discouraged so that only a missing index can cause one."""
    world = await build_world(db, clock.now())
    for i in range(50):
        await log(db, world.enrollment, EventKind.LOGIN, clock.now() + i * DAY)
        await log(db, world.other_enrollment, EventKind.LOGIN, clock.now() + i * DAY)
    await db.commit()
    await login(client, world.therapist.email)
    url = {
        "caseload": "/therapist/caseload",
        "timeline": f"/therapist/patients/{world.enrollment.id}/timeline",
        "status": f"/api/v1/enrollments/{world.enrollment.id}/adherence",
    }[page]
    captured: list[tuple[str, object]] = []
    from sqlalchemy import event

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "adherence_event" in statement and statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    try:
        r = await client.get(url)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", grab)
    assert r.status_code == 200
    connection = await db.connection()
    await connection.execute(text("SET LOCAL enable_seqscan = off"))
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    for statement, parameters in captured:
        plan = await driver.fetch("EXPLAIN " + statement, *(parameters or ()))
        lines = "\n".join(row[0] for row in plan)
        assert "Seq Scan on adherence_event" not in lines, lines
    if page == "timeline":
        assert captured, "the timeline reads the log"
    else:
        assert not captured, "caseload and status read the rollup only"
