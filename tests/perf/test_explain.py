"""Caseload, timeline and status read the rollup or an index, never the whole event log.

PostgreSQL only: SQLite's planner says nothing about PostgreSQL's. The test seeds 20,000
events over 400 enrollments in its own transaction, runs ``ANALYZE`` so the planner knows
the table is large, captures every SELECT the caseload page, the timeline page and the
status endpoint send (with their real parameters), and ``EXPLAIN``s each one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from tests.conftest import TEST_DATABASE_URL
from tests.factories import build_world, login
from tests.perf.seed import add_caseload

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="EXPLAIN plans are checked on PostgreSQL (set TUKI_TEST_DATABASE_URL)",
)

EVENTS = 20_000


async def test_caseload_timeline_and_status_do_not_scan_the_event_log(
    app, client_factory, db, clock, engine
):
    now = clock.now()
    world = await build_world(db, now - timedelta(days=30))
    await add_caseload(db, world.clinic, world.therapist, now, 399, cipher=app.state.cipher)
    await db.execute(
        text(
            "INSERT INTO adherence_event (enrollment_id, kind, at, actor_role) "
            "SELECT e.id, (ARRAY['login','module_opened','page_viewed','exercise_saved'])[1 + g % 4], "
            "       CAST(:start AS timestamptz) + g * interval '1 minute', 'patient' "
            "FROM enrollment e CROSS JOIN generate_series(1, :each) AS g "
            "WHERE e.therapist_id = :therapist"
        ),
        {"start": now - timedelta(days=20), "each": EVENTS // 400, "therapist": world.therapist.id},
    )
    await db.commit()
    total = await db.scalar(text("SELECT count(*) FROM adherence_event"))
    assert total >= EVENTS
    for table in ("adherence_event", "enrollment_rollup", "enrollment", "user", "patient"):
        await db.execute(text(f'ANALYZE "{table}"'))

    therapist = client_factory()
    await login(therapist, world.therapist.email)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    urls = (
        "/therapist/caseload",
        f"/therapist/patients/{world.enrollment.id}/timeline",
        f"/api/v1/enrollments/{world.enrollment.id}/adherence",
    )
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        for url in urls:
            response = await therapist.get(url)
            assert response.status_code == 200, (url, response.text[:300])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)

    touching = [(s, p) for s, p in captured if "adherence_event" in s]
    assert touching, "the timeline reads events; expected at least one statement on the log"
    connection = await db.connection()
    for statement, parameters in captured:
        plan = (await connection.exec_driver_sql("EXPLAIN " + statement, parameters)).all()
        lines = "\n".join(row[0] for row in plan)
        assert "Seq Scan on adherence_event" not in lines, f"{statement}\n{lines}"
