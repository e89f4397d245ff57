"""``make bench``: Tuki at national scale on PostgreSQL, each scenario a ratio in one run.

    .venv/bin/python -m benchmarks.run [--enrollments 20000] [--events 2000000] [--duration 5]
        [--only A,B,H,C,R,D,E,F] [--reuse]

Recreates the scratch database ``<TUKI_BENCH_DATABASE_URL>_run``, migrates it and seeds it
set-based (``generate_series``): 20,000 enrollments across the nine programs, 300
therapists, 2,000,000 adherence events (the generator of ``benchmarks/adherence.py``),
400,000 messages, 100,000 reminders; then rebuilds the rollup and runs ``VACUUM ANALYZE``.
Scenarios, following QUALITY.md 4.3 (server ``taskset -c 0 uvicorn --workers 1 --loop uvloop
--http httptools --no-access-log``, load ``taskset -c 1 wrk -t1 -c32 --latency``, a warm-up,
then 5 alternating rounds of target and reference, medians and max/min spread):

A. ``GET /api/v1/enrollments/{id}/adherence`` vs ``benchmarks/reference_app.py`` replaying
   the same statements through raw asyncpg;
B. the therapist work list page (``GET /therapist``) vs the same data as JSON
   (``GET /api/v1/inbox``);
C. the clinic adherence report vs ``SELECT count(*) FROM adherence_event``, and the
   report's SQL through the ORM vs the same statements through raw asyncpg;
R. the set-based rollup rebuild (``tuki adherence rebuild``, rolled back) vs the same count;
D. ``adherence.record`` (event + rollup upsert) vs a plain INSERT of the same event;
E. ``planner.plan`` for all active enrollments vs one ``INSERT … SELECT`` of as many rows;
F. the CSV export of the whole clinic's event log: time and peak resident-memory growth;
and ``/healthz`` latency under wrk while the clinic report runs in the same server (H).

``--only`` runs a subset of the scenarios; ``--reuse`` keeps the seeded database of an
earlier run (seeding is most of a short run), so iterating on one scenario is cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.accounts import passwords
from app.accounts.dependencies import session_cookie_name
from app.adherence import reports
from app.adherence import service as adherence
from app.adherence.models import AdherenceEvent
from app.audit.service import SYSTEM
from app.common.crypto import FieldCipher
from app.config import Settings
from app.content.service import get_library
from app.db import Database, make_engine
from app.exports import tabular
from app.main import create_app
from app.reminders import planner
from benchmarks.adherence import KINDS, NOW, SEED, rss_kib

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password 2026"
APP_PORT, REF_PORT, CONTROL_PORT = 8711, 8712, 8713
EXTRA_SEED = [
    # Messages: alternating turns in every started enrollment's thread.
    "INSERT INTO message (enrollment_id, sender_id, sender_role, body_encrypted, tag_autonomy,"
    " tag_alliance, tag_emotion_regulation, created_at, read_at)"
    " SELECT e.id, CASE WHEN g % 2 = 0 THEN p.user_id ELSE e.therapist_id END,"
    " CASE WHEN g % 2 = 0 THEN 'patient' ELSE 'therapist' END, CAST(:body AS text),"
    " g % 5 = 1, g % 7 = 1, g % 9 = 1,"
    " e.activated_at + (g * 11 % 240 || ' hours')::interval,"
    " CASE WHEN g % 10 = 0 THEN NULL ELSE e.activated_at + (g * 11 % 240 + 1 || ' hours')::interval END"
    " FROM generate_series(0, CAST(:messages AS bigint) * 10 / 9) g"
    " JOIN enrollment e ON e.id = 1 + g % CAST(:n AS bigint)"
    " JOIN patient p ON p.id = e.patient_id"
    " WHERE e.activated_at IS NOT NULL",
    # Reminders already sent, the planner's history.
    "INSERT INTO reminder (dedupe_key, rule, period, audience, channel, status, clinic_id,"
    " enrollment_id, recipient_user_id, due_at, next_attempt_at, attempts, sent_at, created_at)"
    " SELECT 'bench:' || g, 'inactivity_3d', 'p' || g, 'patient', 'email', 'sent', 1, e.id,"
    " p.user_id, CAST(:now AS timestamptz) - (g % 90 || ' days')::interval,"
    " CAST(:now AS timestamptz) - (g % 90 || ' days')::interval, 1,"
    " CAST(:now AS timestamptz) - (g % 90 || ' days')::interval,"
    " CAST(:now AS timestamptz) - (g % 90 || ' days')::interval"
    " FROM generate_series(0, CAST(:reminders AS bigint) - 1) g"
    " JOIN enrollment e ON e.id = 1 + g % CAST(:n AS bigint)"
    " JOIN patient p ON p.id = e.patient_id",
]


@dataclass
class Wrk:
    rps: float
    p50: float
    p99: float
    cpu_ms: float = float("nan")  # server CPU per request, when its pid was given


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:  # no request finished within the round
        return float("nan")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match[2]]


def wrk(
    url: str, seconds: float, headers: dict[str, str], connections: int = 32, pid: int | None = None
) -> Wrk:
    """One wrk round; with the server's ``pid``, also the server's CPU time per request,
    which other load on a shared box inflates far less than it cuts throughput."""
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", "8s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else float("nan")
    if "Non-2xx" in out:
        # Errors (503 when the pool wait times out on an overloaded box) are not throughput.
        errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        print(f"  wrk: {errors.group(1) if errors else 'some'} error responses from {url}")
        return Wrk(0.0, float("nan"), float("nan"))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Wrk(rps, p50, p99, cpu * 1000 / done if done else float("nan"))


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1 if min(values) > 0 else float("inf")


def alternate(
    target: Callable[[], Wrk], reference: Callable[[], Wrk], rounds: int
) -> tuple[list[Wrk], list[Wrk]]:
    target(), reference()  # warm-up
    ours: list[Wrk] = []
    theirs: list[Wrk] = []
    for _ in range(rounds):
        ours.append(target())
        theirs.append(reference())
    return ours, theirs


async def alternate_async(
    target: Callable[[], Awaitable[float]], reference: Callable[[], Awaitable[float]], rounds: int
) -> tuple[list[float], list[float]]:
    await target()
    await reference()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours.append(await target())
        theirs.append(await reference())
    return ours, theirs


ROWS: list[tuple[str, str, str, str, str]] = []


def row(name: str, ours: str, ref: str, ratio: str, gate: str) -> None:
    ROWS.append((name, ours, ref, ratio, gate))
    print(f"  {name}: {ours} | {ref} | {ratio} | {gate}", flush=True)


def throughput_row(name: str, ours: list[Wrk], theirs: list[Wrk], gate: float) -> None:
    a = statistics.median(w.rps for w in ours)
    b = statistics.median(w.rps for w in theirs)
    sa = spread([w.rps for w in ours])
    sb = spread([w.rps for w in theirs])
    p50 = statistics.median(w.p50 for w in ours)
    p99 = statistics.median(w.p99 for w in ours)
    if not a or not b:
        # Recorded, not fatal: on an overloaded box the other scenarios are still worth having.
        row(name, f"{a:,.0f} rps", f"{b:,.0f} rps", "", "not measured: a side timed out")
        return
    verdict = "met" if a / b >= gate else "NOT met"
    cpu_a = statistics.median(w.cpu_ms for w in ours)
    cpu_b = statistics.median(w.cpu_ms for w in theirs)
    row(
        name,
        f"{a:,.0f} rps (spread {sa:.0%}; p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"server CPU {cpu_a:.2f} ms/request)",
        f"{b:,.0f} rps (spread {sb:.0%}; server CPU {cpu_b:.2f} ms/request)",
        f"{a / b:.2f} (CPU {cpu_b / cpu_a:.2f})",
        f"≥ {gate:.2f}: {verdict}",
    )


def start_server(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        "taskset", "-c", "0", str(Path(sys.executable).parent / "uvicorn"), target,
        "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{target} did not start on port {port}")


async def recreate(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()


def capture(engine: Any) -> tuple[list[tuple[str, tuple[Any, ...]]], Callable[[], None]]:
    statements: list[tuple[str, tuple[Any, ...]]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    return statements, lambda: event.remove(engine.sync_engine, "before_cursor_execute", listener)


async def seeded_already(dsn: str) -> bool:
    """Whether an earlier run left a migrated, seeded database behind."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.InvalidCatalogNameError):
        return False
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM enrollment_rollup)"))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


async def seed(
    admin_dsn: str,
    name: str,
    url: str,
    engine: Any,
    database: Database,
    args: argparse.Namespace,
    settings: Settings,
    cipher: FieldCipher,
) -> None:
    """Recreate, migrate and fill the scratch database set-based, then rebuild and analyse."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    await recreate(admin_dsn, name)
    await asyncio.to_thread(migrate.upgrade, url)
    params = {
        "now": NOW, "n": args.enrollments, "events": args.events,
        "therapists": args.therapists, "kinds": KINDS, "kind_count": len(KINDS),
        "messages": args.messages, "reminders": args.reminders,
        "body": cipher.encrypt("Thank you, this week went better than I expected."),
    }  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        for statement in SEED + EXTRA_SEED:
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            await conn.execute(text(statement), used)
        for table in ("user", "patient", "enrollment", "clinic"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                    f' (SELECT max(id) FROM "{table}"))'
                )
            )
        hashed = await passwords.hash_password(PASSWORD)
        await conn.execute(
            text('UPDATE "user" SET password_hash = :h WHERE id IN (1, 3)'), {"h": hashed}
        )
    async with database.sessionmaker() as db:
        await adherence.rebuild(db)
        await db.commit()
    raw = await asyncpg.connect(dsn)
    await raw.execute("VACUUM ANALYZE")
    await raw.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=20_000)
    parser.add_argument("--therapists", type=int, default=300)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--reminders", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only", default="A,B,H,C,R,D,E,F", help="scenarios to run, e.g. A,C (H is /healthz)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database seeded by an earlier run"
    )
    args = parser.parse_args()
    only = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        raise SystemExit("wrk and taskset are needed: apt-get install -y wrk util-linux")
    base = os.environ.get(
        "TUKI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench"
    )
    url = base + "_run"
    name = url.rsplit("/", 1)[1]
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    admin_dsn = dsn.rsplit("/", 1)[0] + "/postgres"
    settings = Settings(
        database_url=url,
        env="development",
        scheduler_enabled=False,
        base_url=f"http://127.0.0.1:{APP_PORT}",
    )
    library = get_library(settings.content_dir, settings.content_overlay)
    cipher = FieldCipher(settings.encryption_keys.get_secret_value())

    started = time.perf_counter()
    engine = make_engine(settings, application_name="tuki.bench")
    database = Database(engine)
    if args.reuse and await seeded_already(dsn):
        print("reusing the seeded database", name, flush=True)
    else:
        await seed(admin_dsn, name, url, engine, database, args, settings, cipher)
    raw = await asyncpg.connect(dsn)
    counts = {
        t: await raw.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("enrollment", "adherence_event", "message", "reminder")
    }
    therapists = await raw.fetchval("SELECT count(*) FROM \"user\" WHERE role = 'therapist'")
    seeded = time.perf_counter() - started
    print(f"seeded in {seeded:.0f} s: {counts}, therapists {therapists}", flush=True)

    env = {
        "TUKI_DATABASE_URL": url, "TUKI_ENV": "development", "TUKI_SCHEDULER_ENABLED": "false",
        "TUKI_DB_POOL_SIZE": "10", "TUKI_BENCH_DSN": dsn, "TUKI_BASE_URL": settings.base_url,
        "TUKI_BENCH_REPLAY": str(ROOT / "var" / "bench_replay_a.pickle"),
    }  # fmt: skip
    if only & {"A", "B", "H"}:
        servers: list[subprocess.Popen[bytes]] = []
        try:
            servers.append(start_server("app.asgi:app", APP_PORT, env))
            app_pid = servers[0].pid
            app_url = f"http://127.0.0.1:{APP_PORT}"
            cookies: dict[str, dict[str, str]] = {}
            for who, email in (("admin", "u1@bench.invalid"), ("therapist", "u3@bench.invalid")):
                async with httpx.AsyncClient(base_url=app_url) as http:
                    r = await http.post(
                        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
                    )
                    if r.status_code != 200:
                        raise SystemExit(f"login as {who} failed: {r.status_code} {r.text}")
                    token = r.cookies[session_cookie_name(settings)]
                    cookies[who] = {"Cookie": f"{session_cookie_name(settings)}={token}"}
            enrollment_id = await raw.fetchval(
                "SELECT min(id) FROM enrollment WHERE therapist_id = 3 AND status = 'active'"
            )
            a_path = f"/api/v1/enrollments/{enrollment_id}/adherence"
            d = args.duration

            if "A" in only:
                # Record A's statements in-process (same database, same session) for the reference.
                inproc = create_app(settings, database=database)
                statements, stop = capture(engine)
                transport = httpx.ASGITransport(app=inproc)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as local:
                    r = await local.get(a_path, headers=cookies["therapist"])
                    r.raise_for_status()
                stop()
                replay = [(s, p) for s, p in statements if not s.startswith(("BEGIN", "COMMIT"))]
                Path(env["TUKI_BENCH_REPLAY"]).parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(
                    Path(env["TUKI_BENCH_REPLAY"]).write_bytes, pickle.dumps(replay)
                )
                servers.append(start_server("benchmarks.reference_app:app", REF_PORT, env))
                print(f"A: {len(replay)} statements per request", flush=True)
                ours, theirs = alternate(
                    lambda: wrk(app_url + a_path, d, cookies["therapist"], pid=app_pid),
                    lambda: wrk(
                        f"http://127.0.0.1:{REF_PORT}/enrollments/{enrollment_id}/adherence",
                        d,
                        {},
                        pid=servers[-1].pid,
                    ),
                    args.rounds,
                )
                throughput_row("A. enrollment adherence JSON vs raw asyncpg", ours, theirs, 0.50)
                servers.pop().send_signal(signal.SIGINT)

            if "B" in only:
                ours, theirs = alternate(
                    lambda: wrk(app_url + "/therapist", d, cookies["therapist"], pid=app_pid),
                    lambda: wrk(app_url + "/api/v1/inbox", d, cookies["therapist"], pid=app_pid),
                    args.rounds,
                )
                throughput_row("B. work list HTML vs JSON", ours, theirs, 0.70)

            if "H" in only:
                health = [wrk(app_url + "/healthz", 3, {}, connections=4) for _ in range(2)]
                # Control: a bare Starlette /healthz on the same core at the same moment, so
                # a p99 the box itself causes (other load on core 0) is told apart from ours.
                control_server = start_server("benchmarks.reference_app:app", CONTROL_PORT, env)
                servers.append(control_server)
                control = [
                    wrk(f"http://127.0.0.1:{CONTROL_PORT}/healthz", 3, {}, connections=4)
                    for _ in range(2)
                ]
                servers.remove(control_server)
                control_server.send_signal(signal.SIGINT)
                control_server.wait(timeout=30)
                reports_done = 0
                stop_reports = asyncio.Event()

                async def run_reports() -> None:
                    nonlocal reports_done
                    async with httpx.AsyncClient(base_url=app_url, timeout=120) as http:
                        while not stop_reports.is_set():
                            r = await http.get(
                                "/api/v1/reports/adherence", headers=cookies["admin"]
                            )
                            if r.status_code == 200:
                                reports_done += 1
                            else:
                                print(f"  report answered {r.status_code}", flush=True)

                loader = asyncio.create_task(run_reports())
                await asyncio.sleep(0.5)
                busy = await asyncio.to_thread(wrk, app_url + "/healthz", 10, {}, 4)
                stop_reports.set()
                await loader
                row(
                    "/healthz while the clinic report runs (c=4)",
                    f"p50 {busy.p50:.1f} ms, p99 {busy.p99:.1f} ms ({reports_done} reports)",
                    f"idle p99 {statistics.median(h.p99 for h in health):.1f} ms; bare "
                    f"Starlette /healthz p99 {statistics.median(h.p99 for h in control):.1f} ms",
                    "",
                    f"p99 ≤ 50 ms: {'met' if busy.p99 <= 50 else 'NOT met'}",
                )
        finally:
            for proc in servers:
                proc.send_signal(signal.SIGINT)
            for proc in servers:
                proc.wait(timeout=30)

    async def rolled_back(work: Callable[[AsyncSession], Awaitable[object]]) -> float:
        """Seconds ``work`` takes in a session whose transaction is then rolled back."""
        async with database.sessionmaker() as db:
            t0 = time.perf_counter()
            await work(db)
            elapsed = time.perf_counter() - t0
            await db.rollback()
        return elapsed

    async def count_all() -> float:
        t0 = time.perf_counter()
        await raw.fetchval("SELECT count(*) FROM adherence_event")
        return time.perf_counter() - t0

    # C: report vs count(*); the report's statements via the ORM vs raw asyncpg.
    if "C" in only:

        async def report() -> float:
            return await rolled_back(
                lambda db: reports.clinic_report(
                    db,
                    SYSTEM,
                    clinic_id=1,
                    filters=reports.ReportFilters(),
                    settings=settings,
                    library=library,
                    now=NOW,
                )
            )

        ours_c, theirs_c = await alternate_async(report, count_all, args.rounds)
        t_report, t_count = statistics.median(ours_c), statistics.median(theirs_c)
        row(
            "C. clinic report vs count(*) (2M events)",
            f"{t_report * 1000:.0f} ms (spread {spread(ours_c):.0%})",
            f"{t_count * 1000:.0f} ms (spread {spread(theirs_c):.0%})",
            f"{t_report / t_count:.2f}x",
            f"≤ 5x: {'met' if t_report / t_count <= 5 else 'NOT met'}",
        )
        statements, stop = capture(engine)
        await report()
        stop()
        report_sql = [
            (s, p) for s, p in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))
        ]

        async def report_raw() -> float:
            t0 = time.perf_counter()
            async with raw.transaction():
                for statement, parameters in report_sql:
                    await raw.fetch(statement, *parameters)
            return time.perf_counter() - t0

        ours_c, theirs_c = await alternate_async(report, report_raw, args.rounds)
        t_orm, t_raw = statistics.median(ours_c), statistics.median(theirs_c)
        row(
            f"C. report through the ORM vs its {len(report_sql)} statements via asyncpg",
            f"{t_orm * 1000:.0f} ms (spread {spread(ours_c):.0%})",
            f"{t_raw * 1000:.0f} ms (spread {spread(theirs_c):.0%})",
            f"{t_orm / t_raw:.2f}x",
            f"≤ 1.15x: {'met' if t_orm / t_raw <= 1.15 else 'NOT met'}",
        )

    # R: the set-based rollup rebuild (QUALITY.md 4.3 C: at most 20x count(*)), rolled back.
    if "R" in only:

        async def rebuild() -> float:
            return await rolled_back(adherence.rebuild)

        ours_r, theirs_r = await alternate_async(rebuild, count_all, args.rounds)
        t_rebuild, t_count = statistics.median(ours_r), statistics.median(theirs_r)
        row(
            "R. rollup rebuild (rollups and waits) vs count(*)",
            f"{t_rebuild * 1000:.0f} ms (spread {spread(ours_r):.0%})",
            f"{t_count * 1000:.0f} ms (spread {spread(theirs_r):.0%})",
            f"{t_rebuild / t_count:.1f}x",
            f"≤ 20x: {'met' if t_rebuild / t_count <= 20 else 'NOT met'}",
        )

    # D: record() with its rollup upsert vs a plain insert, one transaction per event.
    if "D" in only:
        batch = 300
        active = [
            r["id"]
            for r in await raw.fetch("SELECT id FROM enrollment WHERE status = 'active' LIMIT 500")
        ]
        moment = NOW + timedelta(hours=1)

        async def record_events() -> float:
            t0 = time.perf_counter()
            for i in range(batch):
                async with database.sessionmaker() as db:
                    await adherence.record(
                        db, enrollment_id=active[i % len(active)], kind=adherence.EventKind.PAGE_VIEWED,
                        at=moment, actor_role="patient", detail={"module": "01-bench"},
                    )  # fmt: skip
                    await db.commit()
            return time.perf_counter() - t0

        async def plain_inserts() -> float:
            t0 = time.perf_counter()
            for i in range(batch):
                async with database.sessionmaker() as db:
                    await db.execute(
                        insert(AdherenceEvent).values(
                            enrollment_id=active[i % len(active)], kind="page_viewed", at=moment,
                            actor_role="patient", detail={"module": "01-bench"},
                        )
                    )  # fmt: skip
                    await db.commit()
            return time.perf_counter() - t0

        ours_d, theirs_d = await alternate_async(record_events, plain_inserts, args.rounds)
        t_rec, t_ins = statistics.median(ours_d), statistics.median(theirs_d)
        row(
            f"D. record event + rollup vs plain insert ({batch} events, 1 tx each)",
            f"{t_rec / batch * 1e6:.0f} µs/event (spread {spread(ours_d):.0%})",
            f"{t_ins / batch * 1e6:.0f} µs/event (spread {spread(theirs_d):.0%})",
            f"{t_rec / t_ins:.2f}x",
            f"≤ 2x: {'met' if t_rec / t_ins <= 2 else 'NOT met'}",
        )

    # E: the planner for every active enrollment vs one INSERT … SELECT of as many rows.
    if "E" in only:
        plan_at = NOW + timedelta(days=1)
        planned = 0

        async def plan() -> float:
            nonlocal planned
            async with database.sessionmaker() as db:
                t0 = time.perf_counter()
                result = await planner.plan(db, now=plan_at, settings=settings, library=library)
                elapsed = time.perf_counter() - t0
                planned = result.planned
                await db.rollback()
            return elapsed

        async def bulk_insert() -> float:
            tx = raw.transaction()
            await tx.start()
            t0 = time.perf_counter()
            await raw.execute(
                "INSERT INTO reminder (dedupe_key, rule, period, audience, channel, status,"
                " clinic_id, enrollment_id, recipient_user_id, due_at, next_attempt_at, attempts,"
                " created_at) SELECT 'bulk:' || g, 'inactivity_3d', 'x', 'patient', 'email',"
                " 'pending', 1, 1 + g % $2, 1, $3, $3, 0, $3 FROM generate_series(1, $1) g",
                max(planned, 1), args.enrollments, plan_at,
            )  # fmt: skip
            elapsed = time.perf_counter() - t0
            await tx.rollback()
            return elapsed

        await plan()
        ours_e, theirs_e = await alternate_async(plan, bulk_insert, 3)
        t_plan, t_bulk = statistics.median(ours_e), statistics.median(theirs_e)
        row(
            f"E. plan reminders ({planned:,} rows) vs one INSERT … SELECT",
            f"{t_plan * 1000:.0f} ms (spread {spread(ours_e):.0%})",
            f"{t_bulk * 1000:.0f} ms (spread {spread(theirs_e):.0%})",
            f"{t_plan / t_bulk:.2f}x",
            f"≤ 3x: {'met' if t_plan / t_bulk <= 3 else 'NOT met'}",
        )

    # F: CSV export of every event of the clinic, streamed, with peak RSS growth.
    if "F" in only:
        before = peak = rss_kib()
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        t0 = time.perf_counter()
        size = 0
        async for chunk in tabular.stream_csv(
            database, "events", clinic_id=1, filters=reports.ReportFilters(),
            settings=settings, library=library, now=NOW,
        ):  # fmt: skip
            size += len(chunk)
        elapsed = time.perf_counter() - t0
        done.set()
        await sampler
        growth = (peak - before) / 1024
        row(
            "F. CSV export, whole clinic's events",
            f"{elapsed:.1f} s, {size / 1e6:.0f} MB",
            "",
            f"peak RSS growth {growth:.1f} MiB",
            f"< 100 MB: {'met' if growth < 100 else 'NOT met'}",
        )
    versions = await raw.fetchval("SHOW server_version")
    await raw.close()
    await database.dispose()

    lscpu = (
        await asyncio.to_thread(subprocess.run, ["lscpu"], capture_output=True, text=True)
    ).stdout
    model = re.search(r"Model name:\s+(.+)", lscpu)
    print(
        f"\nMachine: nproc {os.cpu_count()}, {model.group(1) if model else platform.machine()}, "
        f"Python {platform.python_version()}, PostgreSQL {versions}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; total {time.perf_counter() - started:.0f} s\n"
    )
    print("| scenario | Tuki | reference | ratio | gate |")
    print("|---|---|---|---:|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    asyncio.run(main())
