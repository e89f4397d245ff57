"""R4: twenty concurrent writers on SQLite never see "database is locked".

Every transaction starts with ``BEGIN IMMEDIATE`` and waits up to ``busy_timeout`` for the
single write lock, so writers queue instead of failing. The pragmas that make this work
are set by the engine's connect hook and checked here on every pooled connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import text

from app.db import make_engine
from tests.conftest import make_settings
from tests.reliability.harness import ON_POSTGRES, add_patients, running, scratch_url, seed

pytestmark = pytest.mark.skipif(
    ON_POSTGRES, reason="SQLite's single write lock; PostgreSQL has row locks (see R3 and R5)"
)

WRITERS = 20
ROUNDS = 3
EXERCISE = "01-understanding-low-mood/my-circle"
MODULE = "01-understanding-low-mood"


async def test_pragmas_are_set_on_every_connection() -> None:
    """Hold many connections at once, so each is a new one that went through the hook."""
    async with scratch_url() as url:
        engine = make_engine(make_settings(database_url=url))
        try:
            connections = [await engine.connect() for _ in range(8)]
            seen = set()
            for connection in connections:
                raw = await connection.get_raw_connection()
                seen.add(id(raw.driver_connection))
                values = [
                    (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                    for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
                ]
                assert values[0] == "wal"
                assert values[1] >= 5000
                assert values[2] == 1
                assert values[3] == 1  # NORMAL: safe in WAL mode
                await connection.commit()  # keep the connection, release the write lock
            assert len(seen) == len(connections)
            for connection in connections:
                await connection.close()
        finally:
            await engine.dispose()


async def test_twenty_concurrent_writers_are_never_locked_out() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        patients = await add_patients(seeded, WRITERS)
        async with running(url) as server:

            async def writer(index: int) -> list[tuple[str, int]]:
                user, enrollment = patients[index]
                base = f"/api/v1/enrollments/{enrollment.id}"
                results = []
                async with seeded.client(server, user) as client:
                    version = 0
                    for round_ in range(ROUNDS):
                        answers = [f"Round {round_} answer {i}" for i in range(5)]
                        draft = await client.put(
                            f"{base}/exercises/{EXERCISE}",
                            json={"data": {"answers": answers}, "version": version},
                        )
                        if draft.status_code == 200:
                            version = draft.json()["response"]["version"]
                        message = await client.post(
                            f"{base}/messages", json={"body": f"Writer {index}, round {round_}"}
                        )
                        position = await client.put(
                            f"{base}/modules/{MODULE}/position", json={"page": round_ + 1}
                        )
                        results += [
                            ("draft", draft.status_code),
                            ("message", message.status_code),
                            ("position", position.status_code),
                        ]
                return results

            outcomes = await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        statuses = Counter(result for results in outcomes for result in results)
        assert statuses == {
            ("draft", 200): WRITERS * ROUNDS,
            ("message", 201): WRITERS * ROUNDS,
            ("position", 200): WRITERS * ROUNDS,
        }, statuses
        assert "database is locked" not in server.output
