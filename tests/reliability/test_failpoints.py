"""Failpoints: never armed in production, strict about their spec, and every one is all-or-nothing.

The in-process loop arms each failpoint with ``error`` in turn: the request fails with
500 and no table changes. It is the fast companion of test_crash.py, which kills a real
server at the same points.
"""

from __future__ import annotations

import pytest

from app.common import failpoints
from tests.factories import build_world
from tests.reliability.test_crash import ENROLL, EXERCISE_SUBMIT, FAILPOINTS, MESSAGE
from tests.security.helpers import client_for, snapshot


def test_production_refuses_failpoints() -> None:
    with pytest.raises(ValueError, match="never armed in production"):
        failpoints.configure("message.after_insert=sleep(5)", env="production")
    failpoints.configure(None, env="production")


@pytest.mark.parametrize("spec", ["message.after_insert", "x=sleep()", "x=explode", "=error"])
def test_a_malformed_spec_is_an_error(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid failpoint"):
        failpoints.parse(spec)


def test_spec_parsing() -> None:
    assert failpoints.parse("a=sleep(2.5); b=error, c=off") == {
        "a": failpoints.Action("sleep", 2.5),
        "b": failpoints.Action("error"),
        "c": failpoints.Action("off"),
    }


async def test_unarmed_failpoints_do_nothing() -> None:
    with failpoints.armed("other=error"):
        await failpoints.failpoint("message.after_insert")


async def test_an_error_at_every_failpoint_changes_nothing(app, db, clock) -> None:
    world = await build_world(db, clock.now())
    senders = {
        MESSAGE: await client_for(app, db, clock, world.patient_user),
        EXERCISE_SUBMIT: await client_for(app, db, clock, world.patient_user),
        ENROLL: await client_for(app, db, clock, world.admin),
    }
    before = await snapshot(db)
    for name, unit in FAILPOINTS.items():
        with failpoints.armed(f"{name}=error"):
            response = await senders[unit].post(unit.path(world), json=unit.body(world))
        assert response.status_code == 500, (name, response.text)
        assert response.json()["code"] == "server_error"
        assert await snapshot(db) == before, f"partial write left behind at {name}"
    for unit, sender in senders.items():
        response = await sender.post(unit.path(world), json=unit.body(world))
        assert response.status_code == unit.expected, response.text
