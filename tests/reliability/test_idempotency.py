"""R5: Idempotency-Key on creating POSTs, on committed data with real concurrent connections.

The data lives in a scratch database (see harness), because the per-test rolled-back
transaction of the other tests would put every request on one connection.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.accounts.dependencies import session_cookie_name
from app.accounts.models import User
from app.common import failpoints, idempotency
from app.common.idempotency_models import IdempotencyRecord
from app.db import Database, make_engine
from app.inbox.models import Message
from app.main import create_app
from tests.factories import build_world
from tests.reliability.harness import Seeded, running, scratch_url, seed, session_on

API = "/api/v1"


@asynccontextmanager
async def in_process(seeded: Seeded) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The app over ASGI with its own engine (a connection per request), one client per person."""
    database = Database(make_engine(seeded.settings))
    app = create_app(seeded.settings, database=database)
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        for role in ("patient_user", "therapist", "admin"):
            user: User = getattr(seeded.world, role)
            token, csrf = seeded.tokens[user.email]
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://test",
                headers={"X-CSRF-Token": csrf},
            )
            client.cookies.set(session_cookie_name(seeded.settings), token)
            clients[role] = client
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        await database.dispose()


def messages_url(seeded: Seeded) -> str:
    return f"{API}/enrollments/{seeded.world.enrollment.id}/messages"


async def message_count(url: str) -> int:
    async with session_on(url) as db:
        return int(await db.scalar(select(func.count(Message.id))) or 0)


def check_one_winner(responses: list[httpx.Response]) -> int:
    """Every answer is the first one replayed, or 409 in progress; returns the message id."""
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [(r.status_code, r.text) for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert created, statuses
    assert len({r.json()["id"] for r in created}) == 1
    fresh = [r for r in created if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(fresh) == 1, statuses
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] == "idempotency_in_progress"
        assert conflict.headers["Retry-After"] == "1"
    return int(created[0].json()["id"])


async def test_twenty_simultaneous_posts_with_one_key_create_one_message_in_process() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        async with in_process(seeded) as clients:
            patient = clients["patient_user"]
            body = {"body": "Sent from a flaky connection."}
            headers = {"Idempotency-Key": "flaky-1"}
            responses = await asyncio.gather(
                *(patient.post(messages_url(seeded), json=body, headers=headers) for _ in range(20))
            )
            check_one_winner(list(responses))
            assert await message_count(url) == 1
            # Whatever the racers were told, a retry now gets the original.
            retry = await patient.post(messages_url(seeded), json=body, headers=headers)
            assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
            assert await message_count(url) == 1


async def test_twenty_simultaneous_posts_with_one_key_create_one_message_on_a_server() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        async with (
            running(url) as server,
            seeded.client(server, seeded.world.patient_user) as patient,
        ):
            body = {"body": "Sent twenty times by an impatient phone."}
            headers = {"Idempotency-Key": "impatient-1"}
            responses = await asyncio.gather(
                *(patient.post(messages_url(seeded), json=body, headers=headers) for _ in range(20))
            )
            check_one_winner(list(responses))
        assert await message_count(url) == 1


async def test_replay_scope_mismatch_and_failure_before_commit() -> None:
    """Byte-identical replay; 422 for another body; keys are per user; a failed try keeps nothing."""
    async with scratch_url() as url:
        seeded = await seed(url)
        async with in_process(seeded) as clients:
            patient, therapist = clients["patient_user"], clients["therapist"]
            target = messages_url(seeded)
            key = {"Idempotency-Key": "same-key"}

            first = await patient.post(target, json={"body": "One."}, headers=key)
            second = await patient.post(target, json={"body": "One."}, headers=key)
            assert first.status_code == second.status_code == 201
            assert first.content == second.content
            assert await message_count(url) == 1

            other = await patient.post(target, json={"body": "Two."}, headers=key)
            assert other.status_code == 422 and other.json()["code"] == "idempotency_mismatch"

            # The therapist's request with the patient's key is the therapist's own message.
            reply = await therapist.post(target, json={"body": "One."}, headers=key)
            assert reply.status_code == 201 and "Idempotent-Replayed" not in reply.headers
            assert reply.json()["id"] != first.json()["id"]
            assert reply.json()["sender_role"] == "therapist"
            assert await message_count(url) == 2

            # Failing after every row is written but before commit stores neither the
            # message nor the key, so the retry runs once.
            retry_key = {"Idempotency-Key": "after-failure"}
            with failpoints.armed("message.after_audit=error"):
                failed = await patient.post(target, json={"body": "Three."}, headers=retry_key)
            assert failed.status_code == 500 and failed.json()["code"] == "server_error"
            assert await message_count(url) == 2
            ok = await patient.post(target, json={"body": "Three."}, headers=retry_key)
            assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers
            again = await patient.post(target, json={"body": "Three."}, headers=retry_key)
            assert again.headers["Idempotent-Replayed"] == "true"
            assert await message_count(url) == 3


async def test_any_interleaving_of_retries_leaves_one_message_per_key() -> None:
    """Property: batches of concurrent sends drawn from a few keys leave one row per key.

    Hypothesis drives synchronous examples, so they run on a thread with a loop of their own.
    """
    async with scratch_url() as url:
        seeded = await seed(url)
        examples = iter(range(1_000_000))

        async def example(batches: list[list[int]]) -> None:
            prefix = f"r{next(examples)}-"
            before = await message_count(url)
            async with in_process(seeded) as clients:
                for batch in batches:
                    await asyncio.gather(
                        *(
                            clients["patient_user"].post(
                                messages_url(seeded),
                                json={"body": f"Retry of {prefix}{k}"},
                                headers={"Idempotency-Key": f"{prefix}{k}"},
                            )
                            for k in batch
                        )
                    )
            distinct = {k for batch in batches for k in batch}
            assert await message_count(url) - before == len(distinct)
            async with session_on(url) as db:
                keys = await db.scalar(
                    select(func.count(IdempotencyRecord.id)).where(
                        IdempotencyRecord.key.startswith(prefix)
                    )
                )
            assert keys == len(distinct)

        @settings(max_examples=12, deadline=None, database=None)
        @given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), max_size=4))
        def scenario(batches: list[list[int]]) -> None:
            asyncio.run(example(batches))

        await asyncio.to_thread(scenario)


async def test_a_key_expires_after_a_day(db, clock) -> None:
    """Within 24 h the key replays; from then on it is new again (and can be stored again)."""
    world = await build_world(db, clock.now())
    who = {"user_id": world.patient_user.id, "key": "old-key", "request_fingerprint": "f"}
    await idempotency.remember(db, **who, status_code=201, body={"id": 7}, now=clock.now())

    clock.advance(timedelta(hours=23, minutes=59))
    replayed = await idempotency.replay(db, **who, now=clock.now())
    assert replayed is not None and json.loads(bytes(replayed.body)) == {"id": 7}

    clock.advance(timedelta(minutes=1))
    assert await idempotency.replay(db, **who, now=clock.now()) is None
    await idempotency.remember(db, **who, status_code=201, body={"id": 8}, now=clock.now())
    replayed = await idempotency.replay(db, **who, now=clock.now())
    assert replayed is not None and json.loads(bytes(replayed.body)) == {"id": 8}


async def test_the_purge_deletes_expired_records_and_keeps_live_ones(db, database, clock) -> None:
    """Stored answers can name patients: past their day they are deleted by the scheduler's
    ``idempotency.purge``, in its own transaction; younger ones still replay."""
    from app.common.clock import FrozenClock
    from app.reminders import jobs

    world = await build_world(db, clock.now())
    user_id = world.patient_user.id
    start = clock.now()
    for key, age in (("day-old", timedelta(hours=24)), ("older", timedelta(days=9))):
        await idempotency.remember(
            db, user_id=user_id, key=key, request_fingerprint="f", status_code=201,
            body={"name": "Mari Patient"}, now=start - age,
        )  # fmt: skip
    await idempotency.remember(
        db, user_id=user_id, key="fresh", request_fingerprint="f", status_code=201,
        body={"id": 3}, now=start - timedelta(hours=23),
    )  # fmt: skip
    await db.commit()

    assert await jobs.purge_idempotency_sweep(database, clock=FrozenClock(start)) == 2
    keys = set(await db.scalars(select(IdempotencyRecord.key)))
    assert keys == {"fresh"}
    replayed = await idempotency.replay(
        db, user_id=user_id, key="fresh", request_fingerprint="f", now=start
    )
    assert replayed is not None and json.loads(bytes(replayed.body)) == {"id": 3}
    assert await jobs.purge_idempotency_sweep(database, clock=FrozenClock(start)) == 0
