"""Planning reminders for 100,000 active enrollments on PostgreSQL: time and statement count.

    .venv/bin/python -m benchmarks.reminders_plan [--enrollments 100000] [--keep]

Next to the server of ``TUKI_BENCH_DATABASE_URL`` (or ``--url``) it creates a database of
its own, ``<name>_reminders`` (dropped afterwards unless --keep), migrates it, seeds it
with set-based SQL (generate_series: clinics, therapists, patients, enrollments spread
over 60 days of treatment, rollups with last activity up to 20 days ago, ten modules per
enrollment with some completed, baseline questionnaires for half, preferences with a
weekly program time and quiet hours for a third), then runs the planner four times:

1. cold: every rule finds work and inserts and places its rows;
2. again at the same moment: nothing new (idempotent), the steady-state cost;
3. five minutes later, as the scheduler would;
4. at 02:00 in Helsinki, when most patients are in their quiet hours, so new rows are
   placed later in the morning (the placement join is at work).

Not run by the unit tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event, func, select, text

from app import migrate
from app.config import Settings
from app.content.service import get_library
from app.db import Database, make_engine
from app.reminders import planner
from app.reminders.models import Reminder

PROGRAMS = [
    "depression",
    "gad",
    "ocd",
    "bipolar",
    "social-anxiety",
    "bulimia",
    "alcohol",
    "panic",
    "insomnia",
]

SEED = [
    """
    INSERT INTO clinic (slug, name, timezone, emergency_number, crisis_line_name, created_at)
    SELECT 'bench-' || g, 'Bench clinic ' || g, 'Europe/Helsinki', '112', 'Crisis line', CAST(:now AS timestamptz)
    FROM generate_series(1, :clinics) AS g
    """,
    """
    INSERT INTO "user" (clinic_id, email, full_name, role, is_active, language, created_at)
    SELECT c.id, 'therapist-' || c.id || '-' || g || '@bench.test', 'Therapist ' || g,
           'therapist', true, 'en', CAST(:now AS timestamptz)
    FROM clinic AS c CROSS JOIN generate_series(1, :therapists_per_clinic) AS g
    """,
    """
    INSERT INTO "user" (clinic_id, email, full_name, role, is_active, language, created_at)
    SELECT c.id, 'patient-' || g || '@bench.test', 'Patient ' || g, 'patient', true, 'en', CAST(:now AS timestamptz)
    FROM generate_series(1, :enrollments) AS g
    JOIN clinic AS c ON c.slug = 'bench-' || (1 + g % :clinics)
    """,
    """
    INSERT INTO patient (user_id, clinic_id, timezone, created_at)
    SELECT id, clinic_id,
           (ARRAY['Europe/Helsinki', 'Europe/Stockholm', 'Europe/Helsinki', 'UTC'])[1 + id % 4],
           CAST(:now AS timestamptz)
    FROM "user" WHERE role = 'patient'
    """,
    """
    WITH t AS (
        SELECT id, clinic_id, row_number() OVER (PARTITION BY clinic_id ORDER BY id) AS n
        FROM "user" WHERE role = 'therapist'
    )
    INSERT INTO enrollment (clinic_id, patient_id, therapist_id, program, status,
                            activated_at, status_changed_at, created_at)
    SELECT p.clinic_id, p.id, t.id, (CAST(:programs AS text[]))[1 + p.id % 9], 'active',
           CAST(:now AS timestamptz) - make_interval(days => p.id % 60, mins => p.id % 1440),
           CAST(:now AS timestamptz) - make_interval(days => p.id % 60), CAST(:now AS timestamptz) - make_interval(days => p.id % 60)
    FROM patient AS p
    JOIN t ON t.clinic_id = p.clinic_id AND t.n = 1 + p.id % :therapists_per_clinic
    """,
    """
    INSERT INTO enrollment_rollup (enrollment_id, event_count, login_count,
                                   first_activity_at, last_activity_at)
    SELECT id, 10, 3, activated_at,
           GREATEST(activated_at, CAST(:now AS timestamptz) - make_interval(secs => (id * 7919) % (20 * 86400)))
    FROM enrollment
    """,
    """
    INSERT INTO module_progress (enrollment_id, program, module_key, position, last_page,
                                 started_at, completed_at)
    SELECT e.id, e.program, 'm' || lpad(g::text, 2, '0'), g, 0,
           CASE WHEN g <= e.id % 5 THEN e.activated_at + make_interval(days => g - 1) END,
           CASE WHEN g <= e.id % 5 THEN e.activated_at + make_interval(days => g) END
    FROM enrollment AS e CROSS JOIN generate_series(1, 10) AS g
    """,
    """
    INSERT INTO questionnaire_response (enrollment_id, instrument, occasion, week, answers,
                                        total, band, completed_at)
    SELECT id, 'phq9', 'baseline', 0, '{}'::json, 7, 'mild', activated_at + interval '1 hour'
    FROM enrollment WHERE id % 2 = 0
    """,
    """
    INSERT INTO reminder_preference (enrollment_id, email_enabled, sms_enabled, weekdays,
                                     quiet_start, quiet_end, program_weekday, program_time,
                                     updated_at)
    SELECT id, true, false, '[0, 1, 2, 3, 4, 5, 6]'::json, '22:00', '07:00',
           id % 7, make_time(8 + id % 12, 0, 0), CAST(:now AS timestamptz)
    FROM enrollment WHERE id % 3 = 0
    """,
]


async def create_database(url: str) -> str:
    admin = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin


async def drop_database(admin: str, url: str) -> None:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def main(base_url: str, enrollments: int, keep: bool) -> None:
    url = f"{base_url}_reminders"
    admin = await create_database(url)
    settings = Settings(env="development", database_url=url)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(settings, application_name="tuki.bench")
    database = Database(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    params: dict[str, Any] = {
        "now": now,
        "clinics": 10,
        "therapists_per_clinic": 20,
        "enrollments": enrollments,
        "programs": PROGRAMS,
    }
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in SEED:
                names = [k for k in params if f":{k}" in statement]
                await conn.execute(text(statement), {k: params[k] for k in names})
            await conn.exec_driver_sql("ANALYZE")
        print(f"seeded {enrollments:,} active enrollments in {time.perf_counter() - started:.1f} s")

        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT")):
                statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        library = get_library(settings.content_dir, settings.content_overlay)
        helsinki_2am = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        for label, moment in (
            ("cold (everything new)", now),
            ("again, same moment", now),
            ("five minutes later", now + timedelta(minutes=5)),
            ("02:00 Helsinki (quiet)", helsinki_2am),
        ):
            statements.clear()
            started = time.perf_counter()
            async with database.sessionmaker() as db, db.begin():
                report = await planner.plan(db, now=moment, settings=settings, library=library)
            elapsed = time.perf_counter() - started
            print(
                f"plan {label:<24} {elapsed:6.2f} s  {len(statements):3d} statements  "
                f"{report.planned:7,} reminder rows added"
            )
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        async with database.sessionmaker() as db:
            by_rule = await db.execute(
                select(Reminder.rule, func.count()).group_by(Reminder.rule).order_by(Reminder.rule)
            )
            print("rows per rule: " + ", ".join(f"{rule} {n:,}" for rule, n in by_rule))
    finally:
        await engine.dispose()
        if not keep:
            await drop_database(admin, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TUKI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench"
        ),
        help="a PostgreSQL URL; the benchmark uses <its database name>_reminders beside it",
    )
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.enrollments, args.keep))
