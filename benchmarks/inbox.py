"""Inbox scenario: one therapist with 150 active patients and 20,000 messages.

Seeds PostgreSQL (set-based inserts; message bodies really encrypted), then drives the
real app in-process over ASGI and prints p50/p95/p99 latency and throughput for:

- the work list, as JSON (``GET /api/v1/inbox``) and as the therapist's home page,
- one thread (the page with the patient's context, and the JSON API),
- sending a message (``POST /api/v1/enrollments/{id}/messages``).

Colleagues with their own caseloads and messages are seeded too (``--colleagues``), so
the indexes have to pick one therapist's rows out of many.

    TUKI_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench \\
        .venv/bin/python -m benchmarks.inbox [--patients 150] [--messages 20000] [--keep]

It creates its own database, ``<name>_inbox`` beside the one named, migrates and seeds
it, and drops it afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, insert, select, text

from app import migrate
from app.accounts import passwords
from app.accounts.models import User
from app.adherence.models import EnrollmentRollup
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.clock import FrozenClock
from app.config import Settings
from app.db import Database, make_engine
from app.inbox.models import Message
from app.main import create_app
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert

PASSWORD = "benchmark password 123"
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
_SAMPLE = (
    "thank you for reading my diary I tried the exercise again this week it was hard "
    "but I noticed something new about my mornings and the worry came back on Sunday"
)
WORDS = _SAMPLE.split()


def _body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))


async def _create_database(url: str) -> str:
    """A fresh database for the run; returns the maintenance URL used to drop it again."""
    admin = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    await asyncio.to_thread(migrate.upgrade, url)
    return admin


async def _drop_database(admin: str, url: str) -> None:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def seed(
    database: Database, cipher: Any, *, patients: int, messages: int, colleagues: int
) -> tuple[str, list[int]]:
    """The measured therapist's e-mail and enrollment ids."""
    rng = random.Random(4)
    started_seeding = time.perf_counter()
    pw_hash = await passwords.hash_password(PASSWORD)
    async with database.sessionmaker() as db:
        clinic = Clinic(slug="bench", name="Bench clinic", timezone="Europe/Helsinki")
        db.add(clinic)
        await db.flush()
        therapist_ids = []
        for t in range(colleagues + 1):
            user = User(
                clinic_id=clinic.id,
                email=f"therapist{t}@bench.invalid",
                full_name=f"Therapist {t}",
                role="therapist",
                password_hash=pw_hash,
                created_at=NOW - timedelta(days=400),
            )
            db.add(user)
            await db.flush()
            therapist_ids.append(user.id)
        enrollment_ids: dict[int, list[int]] = {}
        patient_user_ids: dict[int, int] = {}
        for therapist_id in therapist_ids:
            users = await db.execute(
                insert(User).returning(User.id),
                [
                    {
                        "clinic_id": clinic.id,
                        "email": f"p{therapist_id}-{i}@bench.invalid",
                        "full_name": f"Patient {therapist_id}-{i}",
                        "role": "patient",
                        "password_hash": None,
                        "created_at": NOW - timedelta(days=120),
                    }
                    for i in range(patients)
                ],
            )
            user_ids = [row[0] for row in users]
            patient_rows = await db.execute(
                insert(Patient).returning(Patient.id, Patient.user_id),
                [{"user_id": uid, "clinic_id": clinic.id, "created_at": NOW} for uid in user_ids],
            )
            pairs = list(patient_rows)
            started = NOW - timedelta(days=90)
            enrollments = await db.execute(
                insert(Enrollment).returning(Enrollment.id, Enrollment.patient_id),
                [
                    {
                        "clinic_id": clinic.id,
                        "patient_id": pid,
                        "therapist_id": therapist_id,
                        "program": "depression",
                        "status": "active",
                        "created_at": started,
                        "activated_at": started,
                        "status_changed_at": started,
                    }
                    for pid, _ in pairs
                ],
            )
            by_patient = dict(pairs)
            ids = []
            for enrollment_id, pid in enrollments:
                ids.append(enrollment_id)
                patient_user_ids[enrollment_id] = by_patient[pid]
            enrollment_ids[therapist_id] = ids
            await db.execute(
                insert(EnrollmentRollup),
                [
                    {
                        "enrollment_id": eid,
                        "event_count": 10,
                        "login_count": 3,
                        "first_activity_at": started,
                        "last_activity_at": NOW - timedelta(days=rng.choice((0, 1, 2, 3, 9, 15))),
                        "last_login_at": NOW - timedelta(days=1),
                    }
                    for eid in ids
                ],
            )
            # Messages: alternating turns per thread over 90 days; about a fifth of the threads
            # end with an unanswered patient message.
            rows = []
            per_thread = max(1, messages // len(ids))
            for eid in ids:
                at = started
                step = timedelta(days=90) / (per_thread + 1)
                unanswered = rng.random() < 0.2
                for k in range(per_thread):
                    at += step
                    # Turns alternate; the last one is the patient's when the thread waits.
                    from_patient = ((per_thread - 1 - k) % 2 == 0) == unanswered
                    waiting = unanswered and k == per_thread - 1
                    rows.append(
                        {
                            "enrollment_id": eid,
                            "sender_id": patient_user_ids[eid] if from_patient else therapist_id,
                            "sender_role": "patient" if from_patient else "therapist",
                            "body_encrypted": cipher.encrypt(_body(rng)),
                            "tag_alliance": not from_patient and k % 3 == 0,
                            "tag_autonomy": not from_patient and k % 5 == 0,
                            "tag_emotion_regulation": False,
                            "created_at": at,
                            "read_at": None if waiting else at + timedelta(hours=3),
                        }
                    )
            for start in range(0, len(rows), 5000):
                await db.execute(insert(Message), rows[start : start + 5000])
            await db.execute(
                insert(ExerciseResponse),
                [
                    {
                        "enrollment_id": eid,
                        "program": "depression",
                        "module_key": "01-understanding-low-mood",
                        "exercise_id": exercise,
                        "exercise_type": "free_text",
                        "status": "submitted",
                        "data_encrypted": cipher.encrypt('{"answers": ["a", "b", "c", "d"]}'),
                        "version": 2,
                        "created_at": NOW - timedelta(days=3),
                        "updated_at": NOW - timedelta(days=2),
                        "submitted_at": NOW - timedelta(days=2),
                    }
                    for eid in ids
                    for exercise in ("my-circle", "my-starting-point")
                    if rng.random() < 0.5
                ],
            )
            await db.execute(
                insert(RiskAlert),
                [
                    {
                        "enrollment_id": eid,
                        "level": "warning",
                        "source": "inactivity",
                        "reason": "No activity for 14 days",
                        "created_at": NOW - timedelta(days=1),
                    }
                    for eid in rng.sample(ids, k=max(1, len(ids) // 30))
                ],
            )
        await db.commit()
        total = await db.scalar(select(text("count(*)")).select_from(Message))
        print(
            f"seeded {len(therapist_ids)} therapists x {patients} patients, {total} messages"
            f" in {time.perf_counter() - started_seeding:.1f} s"
        )
        await db.execute(text("ANALYZE"))
        await db.commit()
    return "therapist0@bench.invalid", enrollment_ids[therapist_ids[0]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


STATEMENTS = [0]


def _count(*_: Any) -> None:
    STATEMENTS[0] += 1


async def measure(
    name: str, call: Callable[[int], Awaitable[httpx.Response]], *, n: int, concurrency: int
) -> dict[str, Any]:
    """Sequential latencies (n calls), then throughput with ``concurrency`` callers."""
    for i in range(3):
        (await call(9 * n + i)).raise_for_status()
    latencies = []
    STATEMENTS[0] = 0
    for i in range(n):
        start = time.perf_counter()
        response = await call(i)
        latencies.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    statements = STATEMENTS[0] / n
    counter = iter(range(n, 10 * n))

    async def worker() -> int:
        done = 0
        for i in counter:
            if i >= n + n:
                break
            (await call(i)).raise_for_status()
            done += 1
        return done

    start = time.perf_counter()
    done = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
    elapsed = time.perf_counter() - start
    return {
        "name": name,
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 95),
        "p99": _percentile(latencies, 99),
        "rps": done / elapsed,
        "statements": statements,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--colleagues", type=int, default=4)
    parser.add_argument("-n", type=int, default=200, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TUKI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench"
        ),
        help="a PostgreSQL URL; the benchmark uses <its database name>_inbox beside it",
    )
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        raise SystemExit("The inbox benchmark needs PostgreSQL (TUKI_BENCH_DATABASE_URL).")
    url = f"{args.url}_inbox"
    admin = await _create_database(url)
    settings = Settings(
        env="test",
        database_url=url,
        base_url="http://bench",
        scheduler_enabled=False,
        require_staff_2fa=False,
        db_pool_size=args.concurrency + 2,
    )
    engine = make_engine(settings, application_name="tuki.bench")
    event.listen(engine.sync_engine, "before_cursor_execute", _count)
    database = Database(engine)
    clock = FrozenClock(NOW)
    app = create_app(settings, database=database, clock=clock)
    email, enrollment_ids = await seed(
        database,
        app.state.cipher,
        patients=args.patients,
        messages=args.messages,
        colleagues=args.colleagues,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        rng = random.Random(7)
        threads = [rng.choice(enrollment_ids) for _ in range(20 * args.n)]
        results = [
            await measure(
                "work list (GET /api/v1/inbox)",
                lambda i: client.get("/api/v1/inbox"),
                n=args.n,
                concurrency=args.concurrency,
            ),
            await measure(
                "work list page (GET /therapist)",
                lambda i: client.get("/therapist"),
                n=args.n,
                concurrency=args.concurrency,
            ),
            await measure(
                "thread page (GET /therapist/patients/{id}/messages)",
                lambda i: client.get(f"/therapist/patients/{threads[i]}/messages"),
                n=args.n,
                concurrency=args.concurrency,
            ),
            await measure(
                "thread API (GET .../messages, 50 latest)",
                lambda i: client.get(f"/api/v1/enrollments/{threads[i]}/messages"),
                n=args.n,
                concurrency=args.concurrency,
            ),
            await measure(
                "send (POST .../messages)",
                lambda i: client.post(
                    f"/api/v1/enrollments/{threads[i]}/messages",
                    json={
                        "body": f"Thank you for writing. Message {i}.",
                        "functions": ["alliance"],
                    },
                    headers={"Idempotency-Key": f"bench-{i}"},
                ),
                n=args.n,
                concurrency=args.concurrency,
            ),
        ]
    await engine.dispose()
    if not args.keep:
        await _drop_database(admin, url)
    print(f"\n{'scenario':<55} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'SQL':>5}")
    for r in results:
        print(
            f"{r['name']:<55} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} {r['rps']:8.1f}"
            f" {r['statements']:5.0f}"
        )
    print(
        f"(sequential latency over {args.n} calls; throughput with {args.concurrency} concurrent callers)"
    )


if __name__ == "__main__":
    asyncio.run(main())
