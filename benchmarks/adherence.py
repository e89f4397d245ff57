"""Adherence at clinic scale on PostgreSQL: 20,000 enrollments and 2,000,000 events.

    TUKI_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench \
        .venv/bin/python benchmarks/adherence.py [--enrollments 20000] [--events 2000000]

One enrollment in ten is still an invitation without events, so the seed spreads
``events`` rows over the nine in ten that started. Creates (and drops) the database named in the URL, migrates it, seeds everything with
``generate_series`` in a handful of set-based statements, runs ``VACUUM ANALYZE``, then
times against the ``count(*)`` reference of QUALITY.md 4.3 C: the clinic report, one
therapist's caseload, a single enrollment's status, the set-based rollup rebuild, and the
CSV export of the enrollments and of the whole event log, with the export's peak memory
(resident set growth, sampled every 10 ms). Not run by the unit tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import text

from app import migrate
from app.accounts.models import Role
from app.accounts.policy import AuthState, Principal
from app.adherence import reports
from app.adherence import service as adherence
from app.audit.service import SYSTEM
from app.clinics.models import Enrollment
from app.config import Settings
from app.content.service import get_library
from app.db import Database, make_engine
from app.exports import tabular

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
KINDS = [
    "login", "module_opened", "page_viewed", "page_viewed", "page_viewed", "exercise_saved",
    "exercise_submitted", "module_completed", "questionnaire_completed", "message_sent",
    "message_sent", "message_read", "reminder_sent", "reminder_opened", "feedback_read",
]  # fmt: skip


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def recreate(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()


SEED = [
    "INSERT INTO clinic (id, slug, name, timezone, emergency_number, crisis_line_name, created_at)"
    " VALUES (1, 'bench', 'Bench clinic', 'Europe/Helsinki', '112', 'Crisis line', CAST(:now AS timestamptz))",
    # Admin, therapists (one per ~450 patients, like routine services), patients.
    'INSERT INTO "user" (id, clinic_id, email, full_name, role, is_active, language, created_at)'
    " SELECT g, 1, 'u' || g || '@bench.invalid', 'Person ' || g,"
    " CASE WHEN g = 1 THEN 'admin' WHEN g <= CAST(:therapists AS bigint) + 1 THEN 'therapist' ELSE 'patient' END,"
    " true, 'en', CAST(:now AS timestamptz) FROM generate_series(1, CAST(:therapists AS bigint) + 1 + CAST(:n AS bigint)) g",
    "INSERT INTO patient (id, user_id, clinic_id, timezone, created_at)"
    " SELECT g, g + CAST(:therapists AS bigint) + 1, 1, 'Europe/Helsinki', CAST(:now AS timestamptz) FROM generate_series(1, CAST(:n AS bigint)) g",
    # Enrolled over the past 40 weeks; one in ten still invited.
    "INSERT INTO enrollment (id, clinic_id, patient_id, therapist_id, program, status,"
    " created_at, activated_at, status_changed_at)"
    " SELECT g, 1, g, 2 + (g % CAST(:therapists AS bigint)),"
    " (ARRAY['depression','gad','ocd','bipolar','social-anxiety','bulimia','alcohol','panic',"
    "'insomnia'])[1 + g % 9],"
    " CASE WHEN g % 10 = 0 THEN 'invited' WHEN g % 7 = 0 THEN 'completed' ELSE 'active' END,"
    " CAST(:now AS timestamptz) - ((g % 280) || ' days')::interval,"
    " CASE WHEN g % 10 = 0 THEN NULL ELSE CAST(:now AS timestamptz) - ((g % 280) || ' days')::interval END,"
    " CAST(:now AS timestamptz) - ((g % 280) || ' days')::interval FROM generate_series(1, CAST(:n AS bigint)) g",
    # Events: spread over each enrollment's time so far, kinds in fixed proportions.
    "INSERT INTO adherence_event (enrollment_id, kind, at, actor_role, detail)"
    " SELECT e.id, k.kind,"
    " e.activated_at + ((g / CAST(:n AS bigint))::float / (CAST(:events AS bigint) * 10 / 9 / CAST(:n AS bigint) + 1) * (EXTRACT(EPOCH FROM CAST(:now AS timestamptz) - e.activated_at)))"
    " * interval '1 second',"
    " CASE WHEN k.kind = 'message_sent' AND g % 2 = 0 THEN 'therapist'"
    " WHEN k.kind IN ('reminder_sent') THEN 'system' ELSE 'patient' END,"
    " CASE WHEN k.kind = 'message_sent' AND g % 2 = 0"
    " THEN json_build_object('message_id', g, 'functions',"
    " json_build_array((ARRAY['autonomy','alliance','emotion_regulation'])[1 + g % 3]),"
    " 'anchored', g % 6 = 0)"
    " WHEN k.kind LIKE 'module%' THEN json_build_object('module', '0' || (g % 9 + 1) || '-bench')"
    " ELSE NULL END"
    " FROM generate_series(0, CAST(:events AS bigint) * 10 / 9) g"
    " JOIN enrollment e ON e.id = 1 + g % CAST(:n AS bigint) AND e.activated_at IS NOT NULL"
    " CROSS JOIN LATERAL (SELECT (CAST(:kinds AS text[]))[1 + (g / CAST(:n AS bigint)) % CAST(:kind_count AS bigint)] AS kind) k",
    # Weekly PHQ-9/GAD-7 style totals for the report's outcome section.
    "INSERT INTO questionnaire_response (enrollment_id, instrument, occasion, week, answers,"
    " total, band, completed_at)"
    " SELECT e.id, CASE WHEN e.program = 'gad' THEN 'gad7' ELSE 'phq9' END,"
    " CASE WHEN w = 0 THEN 'baseline' ELSE 'weekly' END, w, '{}'::json,"
    " greatest(0, 18 - w - (e.id % 5)), 'moderate', e.activated_at + (w || ' weeks')::interval"
    " FROM enrollment e CROSS JOIN generate_series(0, 8) w"
    " WHERE e.activated_at IS NOT NULL AND e.activated_at + (w || ' weeks')::interval < CAST(:now AS timestamptz)",
]


async def timed(label: str, fn: Callable[[], Awaitable[Any]], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<48} {best * 1000:10.1f} ms")
    return best


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrollments", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--therapists", type=int, default=44)
    args = parser.parse_args()
    url = os.environ.get(
        "TUKI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench"
    )
    settings = Settings(database_url=url, env="test")
    library = get_library(settings.content_dir, settings.content_overlay)
    await recreate(url)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(settings, application_name="tuki.bench")
    database = Database(engine)
    params = {
        "now": NOW,
        "n": args.enrollments,
        "events": args.events,
        "therapists": args.therapists,
        "kinds": KINDS,
        "kind_count": len(KINDS),
    }
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        for statement in SEED:
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            await conn.execute(text(statement), used)
        for table in ("user", "patient", "enrollment", "clinic"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                    f' (SELECT max(id) FROM "{table}"))'
                )
            )
    seeded = time.perf_counter() - t0
    async with database.sessionmaker() as db:
        t0 = time.perf_counter()
        rebuilt = await adherence.rebuild(db)
        await db.commit()
        rebuild_s = time.perf_counter() - t0
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await raw.execute("VACUUM ANALYZE")
    events = await raw.fetchval("SELECT count(*) FROM adherence_event")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}, {await raw.fetchval('SHOW server_version')}"
    )
    print(f"seeded {args.enrollments} enrollments, {events} events in {seeded:.1f} s")
    print(
        f"{'rollup rebuild (set-based, incl. support waits)':<48} {rebuild_s * 1000:10.1f} ms"
        f"  ({rebuilt.rollups} rollups, {rebuilt.waits} waits)"
    )

    async def count_all() -> None:
        await raw.fetchval("SELECT count(*) FROM adherence_event")

    reference = await timed("reference: SELECT count(*) FROM adherence_event", count_all, 5)
    clinic_admin = SYSTEM

    async def report() -> None:
        async with database.sessionmaker() as db:
            await reports.clinic_report(
                db,
                clinic_admin,
                clinic_id=1,
                filters=reports.ReportFilters(),
                settings=settings,
                library=library,
                now=NOW,
            )
            await db.rollback()

    async def report_by_therapist() -> None:
        async with database.sessionmaker() as db:
            await reports.clinic_report(
                db,
                clinic_admin,
                clinic_id=1,
                filters=reports.ReportFilters(group_by="therapist"),
                settings=settings,
                library=library,
                now=NOW,
            )
            await db.rollback()

    therapist = Principal(
        user_id=2, role=Role.THERAPIST, clinic_id=1, email="", full_name="", session_id=0,
        csrf_token="", auth_state=AuthState.FULL,
    )  # fmt: skip

    async def caseload() -> None:
        async with database.sessionmaker() as db:
            await reports.caseload(
                db, therapist, SYSTEM, settings=settings, library=library, now=NOW
            )
            await db.rollback()

    async def status() -> None:
        async with database.sessionmaker() as db:
            enrollment = await db.get(Enrollment, min(4321, args.enrollments - 1))
            assert enrollment is not None
            await reports.enrollment_adherence(
                db, SYSTEM, enrollment, settings=settings, library=library, now=NOW
            )
            await db.rollback()

    t_report = await timed("clinic report, per program (20k enrollments)", report)
    await timed("clinic report, per therapist", report_by_therapist)
    t_case = await timed("caseload of one therapist (~450 patients)", caseload)
    t_status = await timed("one enrollment's status (rollup read)", status, 10)
    for dataset in ("enrollments", "events"):
        base = rss_kib()
        peak = base
        stop = asyncio.Event()

        async def sample(stop: asyncio.Event = stop) -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        t0 = time.perf_counter()
        size = rows = 0
        async for chunk in tabular.stream_csv(
            database, dataset, clinic_id=1, filters=reports.ReportFilters(),
            settings=settings, library=library, now=NOW,
        ):  # fmt: skip
            size += len(chunk)
            rows += chunk.count("\n")
        elapsed = time.perf_counter() - t0
        stop.set()
        await sampler
        print(
            f"{'CSV export: ' + dataset:<48} {elapsed * 1000:10.1f} ms  ({rows - 1} rows, "
            f"{size / 1e6:.0f} MB, peak RSS growth {(peak - base) / 1024:.1f} MiB)"
        )
    print(
        f"ratios: report/count(*) {t_report / reference:.2f}; caseload/count(*) "
        f"{t_case / reference:.2f}; status/count(*) {t_status / reference:.3f}; "
        f"rebuild/count(*) {rebuild_s / reference:.1f}"
    )
    print(
        f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    await raw.close()
    await database.dispose()


if __name__ == "__main__":
    asyncio.run(main())
