"""A full walk of the first module for one patient of each of the nine programs, over the API:
read the path, open the module, fill and submit every exercise with valid data built from
the field schema, complete the module, and see the next one open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.adherence.models import AdherenceEvent
from app.content.schemas import PROGRAM_SLUGS
from app.programs.models import ExerciseResponse
from tests.factories import build_world, create_enrollment, login
from tests.programs.helpers import API, by_ref, path_of, submit_all


@pytest.mark.parametrize("program", PROGRAM_SLUGS)
async def test_walk_first_module(program, app, client, client_factory, db, clock):
    world = await build_world(db, clock.now())
    user, _, enrollment = await create_enrollment(
        db, world.clinic, world.therapist, clock.now(), program=program
    )
    await db.commit()
    library = app.state.library
    program_content = library.program(program)
    first, second = program_content.module_keys[:2]
    pacing = program_content.pacing

    await login(client, user.email)
    path = await path_of(client, enrollment.id)
    assert path["program"] == program and path["total"] == len(program_content.modules)
    modules = by_ref(path)
    assert modules[first]["status"] == "available" and modules[first]["number"] == 1
    assert modules[second]["status"] == "locked"
    assert modules[second]["locked_reason"] == "Opens when you complete module 1"

    opened = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{first}")
    assert opened.status_code == 200, opened.text
    module = opened.json()
    assert module["status"] == "in_progress"
    assert len(module["pages"]) >= 3 and module["exercises"]
    responses = await submit_all(client, enrollment.id, module)
    assert all(r["status"] == "submitted" for r in responses.values())

    done = await client.post(f"{API}/enrollments/{enrollment.id}/modules/{first}/complete")
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["module"]["status"] == "completed" and result["completed"] == 1
    assert result["next"]["ref"] == second

    if pacing.therapist_gate:
        assert result["next"]["locked_reason"] == "Your therapist opens this module"
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        opened_by = await therapist.post(
            f"{API}/enrollments/{enrollment.id}/tailoring",
            json={"action": "open_early", "module": second},
        )
        assert opened_by.status_code == 201, opened_by.text
        assert opened_by.json()["description"].startswith("Opened “")
    elif pacing.min_days_between_modules:
        assert result["next"]["locked_reason"].startswith("Opens on ")
        clock.advance(timedelta(days=pacing.min_days_between_modules))
        await login(client, user.email)  # the session has long expired by then
    else:
        assert result["next"]["status"] == "available"

    modules = by_ref(await path_of(client, enrollment.id))
    assert modules[first]["status"] == "completed"
    assert modules[second]["status"] == "available"
    assert (
        await client.get(f"{API}/enrollments/{enrollment.id}/modules/{second}")
    ).status_code == 200

    stored = list(
        await db.scalars(
            select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
        )
    )
    assert {r.exercise_id for r in stored} == {e["id"] for e in module["exercises"]}
    assert all(r.status == "submitted" and r.derived is not None for r in stored)
    kinds = set(
        await db.scalars(
            select(AdherenceEvent.kind).where(AdherenceEvent.enrollment_id == enrollment.id)
        )
    )
    assert {"module_opened", "exercise_saved", "exercise_submitted", "module_completed"} <= kinds
