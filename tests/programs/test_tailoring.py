"""Tailoring a patient's path without copying the program: open early, hide, add a module
from another program, remove it, change pacing, and undo any of it."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.programs.models import ExerciseResponse, ModuleProgress, PacingOverride, TailoringChange
from tests.factories import build_world, login
from tests.programs.helpers import API, by_ref, path_of, submit_all

DEP1 = "01-understanding-low-mood"
DEP2 = "02-activity-and-mood"
DEP3 = "03-values-and-planning"
SLEEP = "insomnia:03-your-sleep-window"


async def setup(client_factory, db, clock):
    world = await build_world(db, clock.now())
    patient = client_factory()
    await login(patient, world.patient_user.email)
    therapist = client_factory()
    await login(therapist, world.therapist.email)
    return world, world.enrollment.id, patient, therapist


async def tailor(client, enrollment_id: int, **body):
    return await client.post(f"{API}/enrollments/{enrollment_id}/tailoring", json=body)


async def revert(client, enrollment_id: int, change_id: int):
    return await client.post(f"{API}/enrollments/{enrollment_id}/tailoring/{change_id}/revert")


async def complete_first(patient, enrollment_id: int) -> None:
    module = (await patient.get(f"{API}/enrollments/{enrollment_id}/modules/{DEP1}")).json()
    await submit_all(patient, enrollment_id, module)
    r = await patient.post(f"{API}/enrollments/{enrollment_id}/modules/{DEP1}/complete")
    assert r.status_code == 200, r.text


class TestOpenEarly:
    async def test_open_early_and_undo(self, client_factory, db, clock):
        world, eid, patient, therapist = await setup(client_factory, db, clock)
        r = await tailor(therapist, eid, action="open_early", module=DEP3)
        assert r.status_code == 201, r.text
        change = r.json()
        assert change["kind"] == "open_early"
        assert change["description"] == "Opened “What matters to you” early"
        assert change["actor"]["id"] == world.therapist.id and change["revertible"]
        modules = by_ref(await path_of(patient, eid))
        assert modules[DEP3]["status"] == "available" and modules[DEP2]["status"] == "locked"
        assert (
            await patient.get(f"{API}/enrollments/{eid}/modules/{DEP3}?page=1")
        ).status_code == 200

        again = await tailor(therapist, eid, action="open_early", module=DEP3)
        assert again.status_code == 409 and again.json()["code"] == "already_open"
        # The patient has started reading it, so undoing would take work away.
        r = await revert(therapist, eid, change["id"])
        assert r.status_code == 409 and r.json()["code"] == "already_started"

    async def test_undo_before_the_patient_starts(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        change = (await tailor(therapist, eid, action="open_early", module=DEP3)).json()
        r = await revert(therapist, eid, change["id"])
        assert r.status_code == 200 and r.json()["reverted_at"] and not r.json()["revertible"]
        assert by_ref(await path_of(patient, eid))[DEP3]["status"] == "locked"
        twice = await revert(therapist, eid, change["id"])
        assert twice.status_code == 409 and twice.json()["code"] == "already_reverted"
        audit = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.resource_type == "tailoring_change")
        )
        assert audit == 2  # the change and its undo (the refused second undo rolled back)

    async def test_therapist_gate_waits_for_the_therapist(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        r = await tailor(
            therapist, eid, action="set_pacing", therapist_gate=True, min_days_between_modules=0
        )
        assert r.status_code == 201, r.text
        path = await path_of(patient, eid)
        assert path["pacing"]["therapist_gate"] and path["pacing"]["therapist_gate_overridden"]
        await complete_first(patient, eid)
        module2 = by_ref(await path_of(patient, eid))[DEP2]
        assert (
            module2["status"] == "locked"
            and module2["locked_reason"] == "Your therapist opens this module"
        )
        assert (await patient.get(f"{API}/enrollments/{eid}/modules/{DEP2}")).status_code == 403
        opened = await tailor(therapist, eid, action="open_early", module=DEP2)
        assert (
            opened.json()["description"] == f"Opened “{module2['title']}”"
        )  # not "early": it was its turn
        assert by_ref(await path_of(patient, eid))[DEP2]["status"] == "available"


class TestHide:
    async def test_patients_never_see_hidden_modules(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        hide = (await tailor(therapist, eid, action="hide", module=DEP2)).json()
        path = await path_of(patient, eid)
        assert DEP2 not in by_ref(path) and path["total"] == 9
        assert by_ref(path)[DEP3]["number"] == 2
        assert by_ref(path)[DEP3]["locked_reason"] == "Opens when you complete module 1"
        assert (await patient.get(f"{API}/enrollments/{eid}/modules/{DEP2}")).status_code == 404
        staff_view = by_ref(await path_of(therapist, eid))
        assert staff_view[DEP2]["hidden"] and staff_view[DEP2]["number"] is None

        again = await tailor(therapist, eid, action="hide", module=DEP2)
        assert again.status_code == 409
        r = await revert(therapist, eid, hide["id"])
        assert r.status_code == 200
        assert DEP2 in by_ref(await path_of(patient, eid))

    async def test_unhide_and_its_undo(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        await tailor(therapist, eid, action="hide", module=DEP2)
        shown = await tailor(therapist, eid, action="unhide", module=DEP2)
        assert shown.status_code == 201 and shown.json()["description"].startswith("Showed")
        assert DEP2 in by_ref(await path_of(patient, eid))
        r = await revert(therapist, eid, shown.json()["id"])
        assert r.status_code == 200
        assert DEP2 not in by_ref(await path_of(patient, eid))
        not_hidden = await tailor(therapist, eid, action="unhide", module=DEP3)
        assert not_hidden.status_code == 409


class TestAddModule:
    async def test_add_a_module_from_another_program(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        r = await tailor(
            therapist, eid, action="add_module", module="insomnia/03-your-sleep-window", after=DEP1
        )
        assert r.status_code == 201, r.text
        change = r.json()
        assert (
            change["description"] == "Added “Your sleep window” from Finding your way back to sleep"
        )
        path = await path_of(patient, eid)
        refs = [m["ref"] for m in path["modules"]]
        assert refs[:3] == [DEP1, SLEEP, DEP2] and path["total"] == 11
        added = by_ref(path)[SLEEP]
        assert added["added"] and added["program"] == "insomnia" and added["number"] == 2
        assert added["added_from_title"] == "Finding your way back to sleep"
        assert added["locked_reason"] == "Opens when you complete module 1"
        assert by_ref(path)[DEP2]["locked_reason"] == "Opens when you complete module 2"
        # Nothing was copied: the content is read from the insomnia program itself.
        rows = await db.scalar(
            select(func.count())
            .select_from(ModuleProgress)
            .where(ModuleProgress.enrollment_id == eid)
        )
        assert rows == 11

        await tailor(therapist, eid, action="open_early", module=SLEEP)
        module = (await patient.get(f"{API}/enrollments/{eid}/modules/{SLEEP}")).json()
        assert module["program"] == "insomnia" and module["exercises"]
        await submit_all(patient, eid, module)
        stored = await db.scalar(
            select(ExerciseResponse.program).where(ExerciseResponse.enrollment_id == eid)
        )
        assert stored == "insomnia"

        has_work = await tailor(therapist, eid, action="remove_module", module=SLEEP)
        assert has_work.status_code == 409 and has_work.json()["code"] == "has_work"
        program_module = await tailor(therapist, eid, action="remove_module", module=DEP2)
        assert program_module.status_code == 409 and program_module.json()["code"] == "not_added"

    async def test_remove_and_undo_the_removal(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        await tailor(
            therapist,
            eid,
            action="add_module",
            program="insomnia",
            module="03-your-sleep-window",
            after="start",
        )
        assert (await path_of(patient, eid))["modules"][0]["ref"] == SLEEP
        removed = await tailor(therapist, eid, action="remove_module", module=SLEEP)
        assert removed.status_code == 201, removed.text
        assert SLEEP not in by_ref(await path_of(therapist, eid))
        r = await revert(therapist, eid, removed.json()["id"])
        assert r.status_code == 200, r.text
        assert (await path_of(patient, eid))["modules"][0]["ref"] == SLEEP

    async def test_undo_an_addition(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        added = (
            await tailor(therapist, eid, action="add_module", module="gad/04-worry-time")
        ).json()
        assert (await path_of(patient, eid))["modules"][-1]["ref"] == "gad:04-worry-time"
        r = await revert(therapist, eid, added["id"])
        assert r.status_code == 200
        assert "gad:04-worry-time" not in by_ref(await path_of(therapist, eid))

    async def test_bad_additions(self, client_factory, db, clock):
        _world, eid, _patient, therapist = await setup(client_factory, db, clock)
        cases = [
            ({"module": "astrology/01-stars"}, 422, "program"),
            ({"module": "insomnia/99-nothing"}, 422, "module"),
            ({"module": "03-your-sleep-window"}, 422, "program"),
            ({"module": f"depression/{DEP2}"}, 409, "already_on_path"),
            ({"module": "insomnia/03-your-sleep-window", "after": "no-such"}, 422, "after"),
        ]
        for body, status, hint in cases:
            r = await tailor(therapist, eid, action="add_module", **body)
            assert r.status_code == status, (body, r.text)
            assert hint in r.text
        r = await tailor(therapist, eid, action="dance")
        assert r.status_code == 422


class TestPacing:
    async def test_pacing_change_and_undo(self, client_factory, db, clock):
        _world, eid, patient, therapist = await setup(client_factory, db, clock)
        r = await tailor(therapist, eid, action="set_pacing", min_days_between_modules=0)
        assert r.status_code == 201
        assert "days between modules: 0" in r.json()["description"]
        await complete_first(patient, eid)
        assert by_ref(await path_of(patient, eid))[DEP2]["status"] == "available"
        same = await tailor(therapist, eid, action="set_pacing", min_days_between_modules=0)
        assert same.status_code == 409 and same.json()["code"] == "no_change"
        undo = await revert(therapist, eid, r.json()["id"])
        assert undo.status_code == 200
        override = await db.get(PacingOverride, eid)
        await db.refresh(override)
        assert override.min_days_between_modules is None
        assert by_ref(await path_of(patient, eid))[DEP2]["locked_reason"] == "Opens on 7 March"
        bad = await tailor(therapist, eid, action="set_pacing", min_days_between_modules=400)
        assert bad.status_code == 422


class TestAccessAndHistory:
    async def test_only_the_assigned_therapist_tailors(self, client_factory, db, clock):
        world, eid, patient, _therapist = await setup(client_factory, db, clock)
        other = client_factory()
        await login(other, world.other_therapist.email)
        assert (await tailor(other, eid, action="hide", module=DEP2)).status_code == 404
        admin = client_factory()
        await login(admin, world.admin.email)
        assert (await tailor(admin, eid, action="hide", module=DEP2)).status_code == 403
        assert (await tailor(patient, eid, action="hide", module=DEP2)).status_code == 403
        assert (await admin.get(f"{API}/enrollments/{eid}/tailoring")).status_code == 200

    async def test_history_and_idempotency(self, client_factory, db, clock):
        world, eid, _patient, therapist = await setup(client_factory, db, clock)
        headers = {"Idempotency-Key": "hide-module-2"}
        first = await therapist.post(
            f"{API}/enrollments/{eid}/tailoring",
            json={"action": "hide", "module": DEP2},
            headers=headers,
        )
        replay = await therapist.post(
            f"{API}/enrollments/{eid}/tailoring",
            json={"action": "hide", "module": DEP2},
            headers=headers,
        )
        assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
        await tailor(therapist, eid, action="open_early", module=DEP3)
        history = (await therapist.get(f"{API}/enrollments/{eid}/tailoring")).json()
        assert [h["kind"] for h in history] == ["open_early", "hide"]
        assert history[0]["actor"]["full_name"] == world.therapist.full_name
        count = await db.scalar(
            select(func.count())
            .select_from(TailoringChange)
            .where(TailoringChange.enrollment_id == eid)
        )
        assert count == 2
        other_change = await revert(therapist, world.other_enrollment.id, history[0]["id"])
        assert other_change.status_code == 404
        missing = await revert(therapist, eid, 999_999)
        assert missing.status_code == 404
