"""R3: PostgreSQL connections terminated under load: only in-flight requests fail, with 503.

A real server runs a steady mix of reads and writes; in the middle, every backend of the
web app is terminated with ``pg_terminate_backend``. Requests caught in flight may fail,
but only with 503 + Retry-After, at most one per pooled connection; the app is back to
full success within a second without a restart (pre-ping is off by default: the first
request on a dead connection fails with 503 and the pool then drops every connection as
old as it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import pytest

from tests.reliability.harness import ON_POSTGRES, running, scratch_url, seed

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="terminating server connections needs PostgreSQL; on SQLite the same 503 contract "
    "for transient database errors is covered by tests/security/test_commit_failure.py",
)

POOL = 4
LOOPS = 8
BEFORE_KILL = 2.0
AFTER_KILL = 3.0


@dataclass
class Outcome:
    started: float
    ended: float
    status: int
    retry_after: str | None


async def test_terminated_connections_give_only_503_and_recover_within_a_second() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        env = {"TUKI_DB_POOL_SIZE": str(POOL), "TUKI_DB_MAX_OVERFLOW": "0"}
        async with running(url, extra_env=env) as server:
            outcomes: list[Outcome] = []
            stop = time.monotonic() + BEFORE_KILL + AFTER_KILL
            messages = f"/api/v1/enrollments/{seeded.world.enrollment.id}/messages"

            async def load(n: int) -> None:
                async with seeded.client(server, seeded.world.patient_user) as client:
                    i = 0
                    while time.monotonic() < stop:
                        started = time.monotonic()
                        if (n + i) % 2:
                            response = await client.get(messages)
                        else:
                            response = await client.post(messages, json={"body": f"Load {n}/{i}"})
                        outcomes.append(
                            Outcome(
                                started,
                                time.monotonic(),
                                response.status_code,
                                response.headers.get("Retry-After"),
                            )
                        )
                        i += 1

            async def terminate() -> tuple[float, int]:
                await asyncio.sleep(BEFORE_KILL)
                dsn = url.replace("postgresql+asyncpg://", "postgresql://")
                conn = await asyncpg.connect(dsn)
                try:
                    killed = await conn.fetch(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'tuki.web' AND datname = current_database()"
                    )
                    killed_at = time.monotonic()
                finally:
                    await conn.close()
                return killed_at, len(killed)

            *_, (killed_at, killed) = await asyncio.gather(
                *(load(n) for n in range(LOOPS)), terminate()
            )
            assert server.process.poll() is None, "the server must not need a restart"

        assert killed >= 1, "no web connection was open to terminate"
        failures = [o for o in outcomes if o.status not in (200, 201)]
        print(  # noqa: T201 - the figures are the point of this test
            f"\n{len(outcomes)} requests, {killed} backends terminated, "
            f"{len(failures)} failed: {sorted({o.status for o in failures})}, last failure "
            f"{max((o.ended - killed_at for o in failures), default=0):.3f} s after the kill"
        )
        assert {o.status for o in failures} <= {503}, server.output
        assert all(o.retry_after == "1" for o in failures)
        assert len(failures) <= POOL
        # Only requests in flight at the kill may fail ...
        assert all(o.started <= killed_at for o in failures)
        # ... and everything that starts a second later succeeds.
        late = [o for o in outcomes if o.started >= killed_at + 1.0]
        assert late and all(o.status in (200, 201) for o in late)
