"""R1: a server killed with SIGKILL in the middle of a multi-row write leaves nothing partial.

For every failpoint in the three multi-row units of work (a message with its adherence
event and audit row; a submitted exercise with its event, rollup and audit row; a new
patient with user, enrollment, invitation and audit row) a real uvicorn process pauses
there, is killed, and the database must equal its state before the request: no orphans,
foreign keys and (on SQLite) the file intact, rollups equal to a recomputation from the
log. A restarted server then performs the same requests once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.accounts.models import Invitation
from app.adherence.models import AdherenceEvent
from app.clinics.models import Enrollment
from app.inbox.models import Message
from app.programs.models import ExerciseResponse
from tests.factories import World
from tests.reliability.harness import (
    Seeded,
    check_invariants,
    running,
    scratch_url,
    seed,
    session_on,
    state,
)

API = "/api/v1"
EXERCISE = "01-understanding-low-mood/my-circle"


@dataclass(frozen=True)
class Unit:
    """One multi-row write: who sends it, where, and with what."""

    sender: str
    path: Callable[[World], str]
    body: Callable[[World], dict[str, Any]]
    expected: int


MESSAGE = Unit(
    "patient_user",
    lambda w: f"{API}/enrollments/{w.enrollment.id}/messages",
    lambda w: {"body": "Could we talk about the weekend?"},
    201,
)
EXERCISE_SUBMIT = Unit(
    "patient_user",
    lambda w: f"{API}/enrollments/{w.enrollment.id}/exercises/{EXERCISE}/submit",
    lambda w: {"data": {"answers": [f"Answer {i}" for i in range(5)]}, "version": 0},
    200,
)
ENROLL = Unit(
    "admin",
    lambda w: f"{API}/enrollments",
    lambda w: {
        "full_name": "Kaisa Kokeilu",
        "email": "kaisa.kokeilu@example.org",
        "timezone": "Europe/Helsinki",
        "program": "insomnia",
        "therapist_id": w.therapist.id,
    },
    201,
)

FAILPOINTS = {
    "message.after_insert": MESSAGE,
    "message.after_event": MESSAGE,
    "message.after_audit": MESSAGE,
    "exercise.after_store": EXERCISE_SUBMIT,
    "exercise.after_event": EXERCISE_SUBMIT,
    "exercise.after_audit": EXERCISE_SUBMIT,
    "enrollment.after_patient": ENROLL,
    "enrollment.after_insert": ENROLL,
    "enrollment.after_invitation": ENROLL,
    "enrollment.after_audit": ENROLL,
}


async def send(seeded: Seeded, server: Any, unit: Unit) -> httpx.Response:
    async with seeded.client(server, getattr(seeded.world, unit.sender)) as client:
        return await client.post(unit.path(seeded.world), json=unit.body(seeded.world))


async def counts(url: str) -> tuple[int, ...]:
    found = []
    async with session_on(url) as db:
        for model in (Message, ExerciseResponse, Enrollment, Invitation, AdherenceEvent):
            found.append(int(await db.scalar(select(func.count()).select_from(model)) or 0))
    return tuple(found)


async def test_sigkill_at_every_failpoint_leaves_nothing_partial() -> None:
    """Each kill is followed by a restart (the next failpoint's server, then a plain one)."""
    async with scratch_url() as url:
        seeded = await seed(url)
        before = await state(url)
        for name, unit in FAILPOINTS.items():
            async with running(url, failpoints=f"{name}=sleep(60)") as server:
                request = asyncio.create_task(send(seeded, server, unit))
                await server.reached(name)
                server.kill()
                with pytest.raises(httpx.TransportError):
                    await request
            assert await state(url) == before, f"partial write left behind at {name}"
            await check_invariants(url)

        # After the last restart each request goes through, and creates its rows once.
        async with running(url) as server:
            for unit, created in (
                (MESSAGE, (1, 0, 0, 0, 1)),
                (EXERCISE_SUBMIT, (0, 1, 0, 0, 1)),
                (ENROLL, (0, 0, 1, 1, 0)),
            ):
                rows = await counts(url)
                response = await send(seeded, server, unit)
                assert response.status_code == unit.expected, response.text
                after = await counts(url)
                assert tuple(b - a for a, b in zip(rows, after, strict=True)) == created
        await check_invariants(url)
