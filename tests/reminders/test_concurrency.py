"""Two deliverers on their own connections, at the same time, against committed rows.

This needs a real multi-connection database with row locks: PostgreSQL. The data lives in
a scratch database of its own (migrated from scratch, dropped afterwards), because the
per-test transaction of the other tests would hide it from a second connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from app import migrate
from app.accounts.models import Role
from app.clinics.models import EnrollmentStatus
from app.db import Database, make_engine
from app.reminders.models import Notification, Reminder
from tests.conftest import START, TEST_DATABASE_URL, make_settings
from tests.factories import create_clinic, create_enrollment, create_user
from tests.reminders.helpers import Recorder, deliverer, scratch_database

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("sqlite"),
    reason="concurrent claiming needs PostgreSQL (row locks, SKIP LOCKED, several connections); "
    "CI runs this with TUKI_TEST_DATABASE_URL",
)

PATIENTS = 40
RULES = ("inactivity", "questionnaire_due", "program_time")


async def _seed(database: Database) -> list[str]:
    """Committed, due reminders: every patient x rule x (in-app, e-mail)."""
    async with database.sessionmaker() as db:
        clinic = await create_clinic(db, START)
        therapist = await create_user(db, clinic, Role.THERAPIST, START)
        enrollments = []
        for i in range(PATIENTS):
            user, _, enrollment = await create_enrollment(
                db, clinic, therapist, START, status=EnrollmentStatus.ACTIVE, name=f"Con Current{i}"
            )
            enrollments.append((user, enrollment))
        rows = [
            {
                "dedupe_key": f"{rule}:e{enrollment.id}:1:{channel}",
                "rule": rule,
                "period": "1",
                "audience": "patient",
                "channel": channel,
                "status": "pending",
                "clinic_id": clinic.id,
                "enrollment_id": enrollment.id,
                "recipient_user_id": user.id,
                "due_at": START,
                "next_attempt_at": START,
                "attempts": 0,
                "created_at": START,
            }
            for user, enrollment in enrollments
            for rule in RULES
            for channel in ("in_app", "email")
        ]
        await db.execute(insert(Reminder), rows)
        await db.commit()
    return [r["dedupe_key"] for r in rows]


async def test_two_deliverers_running_concurrently_send_every_due_reminder_exactly_once():
    url, drop = await scratch_database()
    assert drop is not None
    settings = make_settings(database_url=url, reminder_max_nudges_per_lapse=10)
    engines = []
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        engines = [make_engine(settings, application_name=f"tuki.test.w{i}") for i in (1, 2)]
        first, second = (Database(e) for e in engines)
        keys = await _seed(first)
        for database in (first, second):  # both pools connected before the race starts
            async with database.sessionmaker() as db:
                await db.execute(select(1))
        outbox = Recorder()  # one shared "mail server" sees what both workers send
        workers = [
            deliverer(db, settings, email=outbox, worker_id=f"w{i}", batch_size=7)
            for i, db in enumerate((first, second), start=1)
        ]
        moment = START + timedelta(hours=3)  # 14:00 in Helsinki, outside quiet hours
        reports = await asyncio.gather(*(w.run(moment, max_batches=100) for w in workers))

        email_keys = [k for k in keys if k.endswith(":email")]
        sent_counts = Counter(m.dedupe_key for m in outbox.sent)
        assert sorted(sent_counts) == sorted(email_keys)
        assert set(sent_counts.values()) == {1}, "an e-mail went out twice"
        assert sum(r.claimed for r in reports) == len(keys)
        assert all(r.claimed > 0 for r in reports), ("both should take part", reports)
        async with first.sessionmaker() as db:
            statuses = Counter((await db.scalars(select(Reminder.status))).all())
            assert statuses == {"sent": len(keys)}
            per_reminder = await db.execute(
                select(Notification.reminder_id, func.count()).group_by(Notification.reminder_id)
            )
            counts = dict(per_reminder.all())
            assert len(counts) == len([k for k in keys if k.endswith(":in_app")])
            assert set(counts.values()) == {1}
    finally:
        for engine in engines:
            await engine.dispose()
        await drop()
