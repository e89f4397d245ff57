"""A rollup that drifts from the log is a bug: the incremental rollup must equal a rebuild.

Hypothesis draws random event sequences (kinds, actors, gestures, anchored feedback, equal
timestamps) over a few enrollments, logs them through ``record()``, and checks that
``rebuild()`` recomputes exactly the same rollup rows and answered waits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.accounts.models import Role
from app.adherence import service as adherence
from app.adherence.models import EnrollmentRollup, SupportWait
from app.adherence.service import EventKind
from tests.conftest import START
from tests.factories import create_clinic, create_enrollment, create_user

ROLES = ("patient", "therapist", "system", "admin")

event_strategy = st.tuples(
    st.integers(min_value=0, max_value=2),  # which enrollment
    st.sampled_from(list(EventKind)),
    st.sampled_from(ROLES),
    st.integers(min_value=0, max_value=3 * 24 * 3600),  # seconds after the previous event
    st.lists(st.sampled_from(adherence.GESTURES), unique=True, max_size=3),
    st.booleans(),  # anchored
)


async def _snapshot(db: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rollups = [
        tuple(row)
        for row in await db.execute(
            select(*EnrollmentRollup.__table__.c).order_by(EnrollmentRollup.enrollment_id)
        )
    ]
    waits = [
        tuple(row)
        for row in await db.execute(
            select(
                SupportWait.enrollment_id,
                SupportWait.kind,
                SupportWait.started_at,
                SupportWait.ended_at,
                SupportWait.event_id,
            ).order_by(SupportWait.event_id, SupportWait.kind)
        )
    ]
    return rollups, waits


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(event_strategy, min_size=1, max_size=40))
async def test_rebuilt_rollup_equals_the_incremental_one(database, events):
    async with database.sessionmaker() as db:
        savepoint = await db.begin_nested()
        clinic = await create_clinic(db, START)
        therapist = await create_user(db, clinic, Role.THERAPIST, START)
        enrollments = [(await create_enrollment(db, clinic, therapist, START))[2] for _ in range(3)]
        at = START
        for index, kind, role, gap, functions, anchored in events:
            at = at + timedelta(seconds=gap)
            detail: dict[str, Any] | None = None
            if kind is EventKind.MESSAGE_SENT:
                detail = {"message_id": 1, "functions": functions, "anchored": anchored}
            await adherence.record(
                db,
                enrollment_id=enrollments[index].id,
                kind=kind,
                at=at,
                actor_role=role,
                detail=detail,
            )
        incremental = await _snapshot(db)
        report = await adherence.rebuild(db)
        rebuilt = await _snapshot(db)
        assert rebuilt == incremental
        assert report.drifted == 0
        assert report.rollups == len({e[0] for e in events})
        await savepoint.rollback()


async def test_rebuild_repairs_a_drifted_rollup(db, clock):
    clinic = await create_clinic(db, clock.now())
    therapist = await create_user(db, clinic, Role.THERAPIST, clock.now())
    _, _, enrollment = await create_enrollment(db, clinic, therapist, clock.now())
    for kind in (EventKind.LOGIN, EventKind.MODULE_COMPLETED, EventKind.LOGIN):
        await adherence.record(db, enrollment_id=enrollment.id, kind=kind, at=clock.now())
    rollup = await db.get(EnrollmentRollup, enrollment.id)
    rollup.login_count = 99  # a lost update or a hand edit
    await db.flush()
    report = await adherence.rebuild(db)
    assert report.drifted == 1
    fresh = await db.get(EnrollmentRollup, enrollment.id)
    assert (fresh.login_count, fresh.modules_completed, fresh.event_count) == (2, 1, 3)


def test_the_rebuild_command(monkeypatch):
    """``tuki adherence rebuild``: reports drift with --dry-run, repairs it otherwise."""
    import asyncio
    import uuid

    from sqlalchemy import update
    from typer.testing import CliRunner

    from app import migrate
    from app.cli import app as cli
    from app.config import get_settings
    from app.db import Database, make_engine
    from tests.conftest import _TMP, make_settings

    url = f"sqlite+aiosqlite:///{_TMP / f'rebuild-{uuid.uuid4().hex}.db'}"
    migrate.upgrade(url)

    async def arrange() -> None:
        database = Database(make_engine(make_settings(database_url=url)))
        async with database.sessionmaker() as db:
            clinic = await create_clinic(db, START)
            therapist = await create_user(db, clinic, Role.THERAPIST, START)
            _, _, enrollment = await create_enrollment(db, clinic, therapist, START)
            await adherence.record(db, enrollment_id=enrollment.id, kind=EventKind.LOGIN, at=START)
            await db.execute(update(EnrollmentRollup).values(login_count=7))
            await db.commit()
        await database.dispose()

    asyncio.run(arrange())
    monkeypatch.setenv("TUKI_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        dry = runner.invoke(cli, ["adherence", "rebuild", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "1 rollup rows would change" in dry.output
        real = runner.invoke(cli, ["adherence", "rebuild"])
        assert "1 rollup rows changed" in real.output
        again = runner.invoke(cli, ["adherence", "rebuild"])
        assert "0 rollup rows changed" in again.output
    finally:
        get_settings.cache_clear()
