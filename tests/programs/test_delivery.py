"""Module delivery over the JSON API: the path, reading, drafts, submissions, completion,
who may see what, and the adherence and audit trail each step leaves."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from app.adherence.models import AdherenceEvent
from app.audit.models import AuditEvent
from app.clinics.models import EnrollmentStatus
from app.main import create_app
from app.programs.models import ExerciseResponse, ModuleProgress
from tests.conftest import make_settings
from tests.factories import build_world, create_enrollment, login
from tests.programs.helpers import API, by_ref, path_of, submit_all, valid_data
from tests.querycount import count_statements

DEP1 = "01-understanding-low-mood"
DEP2 = "02-activity-and-mood"
CIRCLE = f"{API}/enrollments/{{id}}/exercises/{DEP1}/my-circle"

SLEEP_NIGHT = {
    "date": "2026-03-02",
    "bed_time": "23:00",
    "minutes_to_sleep": 30,
    "times_woken": 2,
    "minutes_awake": 30,
    "final_wake": "06:00",
    "out_of_bed": "07:00",
    "quality": 3,
}


async def events(db, enrollment_id: int, kind: str) -> list[AdherenceEvent]:
    rows = await db.scalars(
        select(AdherenceEvent)
        .where(AdherenceEvent.enrollment_id == enrollment_id, AdherenceEvent.kind == kind)
        .order_by(AdherenceEvent.id)
    )
    return list(rows)


async def audit_rows(db, **where) -> list[AuditEvent]:
    stmt = select(AuditEvent)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, key) == value)
    return list(await db.scalars(stmt.order_by(AuditEvent.id)))


async def patient_client(client, db, clock, program: str = "depression"):
    world = await build_world(db, clock.now())
    if program == "depression":
        user, enrollment = world.patient_user, world.enrollment
    else:
        user, _, enrollment = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), program=program
        )
        await db.commit()
    await login(client, user.email)
    return world, enrollment


class TestPath:
    async def test_rows_are_created_once_in_one_insert(self, client, db, clock, engine):
        _world, enrollment = await patient_client(client, db, clock)
        with count_statements(engine) as log:
            path = await path_of(client, enrollment.id)
        inserts = [
            s
            for s in log.statements
            if s.lstrip().upper().startswith("INSERT INTO MODULE_PROGRESS")
        ]
        assert len(inserts) == 1
        assert path["total"] == 10 and path["completed"] == 0 and path["next"] == DEP1
        assert [m["number"] for m in path["modules"]] == list(range(1, 11))
        await path_of(client, enrollment.id)
        count = await db.scalar(
            select(func.count())
            .select_from(ModuleProgress)
            .where(ModuleProgress.enrollment_id == enrollment.id)
        )
        assert count == 10

    async def test_statement_count_does_not_grow_with_the_number_of_modules(
        self, client, client_factory, db, clock, engine
    ):
        world = await build_world(db, clock.now())
        _small_user, _, small = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), program="alcohol"
        )
        await db.commit()
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        counts = {}
        for name, enrollment_id in (("alcohol", small.id), ("depression", world.enrollment.id)):
            await path_of(therapist, enrollment_id)  # rows exist from here on
            with count_statements(engine) as log:
                path = await path_of(therapist, enrollment_id)
            counts[name] = (log.count, path["total"])
        for module in (
            "insomnia/03-your-sleep-window",
            "gad/04-worry-time",
            "panic/02-your-panic-pattern",
        ):
            r = await therapist.post(
                f"{API}/enrollments/{world.enrollment.id}/tailoring",
                json={"action": "add_module", "module": module},
            )
            assert r.status_code == 201, r.text
        with count_statements(engine) as log:
            path = await path_of(therapist, world.enrollment.id)
        counts["depression+added"] = (log.count, path["total"])
        assert counts["alcohol"][1] == 8 and counts["depression"][1] == 10
        assert counts["depression+added"][1] > 10
        assert counts["alcohol"][0] == counts["depression"][0] == counts["depression+added"][0]

    async def test_locked_module_is_403_with_the_reason(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        r = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP2}")
        assert r.status_code == 403
        assert r.json() == {"detail": "Opens when you complete module 1.", "code": "module_locked"}
        r = await client.put(
            f"{API}/enrollments/{enrollment.id}/exercises/{DEP2}/activity-diary",
            json={"data": {}, "version": 0},
        )
        assert r.status_code == 403 and r.json()["code"] == "module_locked"

    async def test_unknown_module_and_exercise_are_404(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        r = await client.get(f"{API}/enrollments/{enrollment.id}/modules/99-nothing")
        assert r.status_code == 404 and r.json()["code"] == "module_not_found"
        r = await client.put(
            f"{API}/enrollments/{enrollment.id}/exercises/{DEP1}/no-such",
            json={"data": {}, "version": 0},
        )
        assert r.status_code == 404 and r.json()["code"] == "exercise_not_found"

    async def test_nothing_opens_before_the_invitation_is_accepted(self, client, db, clock):
        world = await build_world(db, clock.now())
        _, _, invited = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), status=EnrollmentStatus.INVITED
        )
        await db.commit()
        await login(client, world.therapist.email)
        path = await path_of(client, invited.id)
        assert {m["locked_reason"] for m in path["modules"]} == {"Opens when the program starts"}


class TestReading:
    async def test_opening_starts_the_module_and_logs_it(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        r = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "in_progress" and body["started_at"] is not None
        assert body["pages"][0]["segments"][0]["html"].startswith("<")
        placed = {e["id"]: e["page"] for e in body["exercises"]}
        assert set(placed) == {"my-circle", "my-starting-point"}
        assert (await events(db, enrollment.id, "module_opened"))[0].detail == {"module": DEP1}
        assert len(await audit_rows(db, resource_type="module", resource_id=DEP1)) == 1

    async def test_page_number_saves_the_position(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        r = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}?page=2")
        assert r.status_code == 200 and r.json()["last_page"] == 2
        viewed = await events(db, enrollment.id, "page_viewed")
        assert [e.detail for e in viewed] == [{"module": DEP1, "page": 2}]
        r = await client.put(
            f"{API}/enrollments/{enrollment.id}/modules/{DEP1}/position", json={"page": 3}
        )
        assert r.status_code == 200 and r.json()["last_page"] == 3
        assert by_ref(await path_of(client, enrollment.id))[DEP1]["last_page"] == 3
        too_far = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}?page=40")
        assert too_far.status_code == 422 and too_far.json()["code"] == "no_such_page"
        bad = await client.put(
            f"{API}/enrollments/{enrollment.id}/modules/{DEP1}/position", json={"page": 0}
        )
        assert bad.status_code == 422

    async def test_staff_read_without_starting_anything(self, client, client_factory, db, clock):
        world, enrollment = await patient_client(client, db, clock)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        r = await therapist.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP2}")
        assert r.status_code == 200  # therapists may look ahead at locked modules
        assert r.json()["status"] == "locked"
        assert await events(db, enrollment.id, "module_opened") == []


class TestDrafts:
    async def test_a_stale_version_gets_409_with_both_versions_and_overwrites_nothing(
        self, client, db, clock
    ):
        _world, enrollment = await patient_client(client, db, clock)
        url = CIRCLE.format(id=enrollment.id)
        first = await client.put(url, json={"data": {"answers": ["At the bus stop"]}, "version": 0})
        assert first.status_code == 200
        assert first.json()["response"]["version"] == 1
        second = await client.put(url, json={"data": {"answers": ["In the kitchen"]}, "version": 1})
        assert second.status_code == 200 and second.json()["response"]["version"] == 2

        stale = await client.put(
            url, json={"data": {"answers": ["Typed in an old tab"]}, "version": 1}
        )
        assert stale.status_code == 409
        body = stale.json()
        assert body["code"] == "stale_draft" and "Nothing was overwritten" in body["detail"]
        assert body["current"]["version"] == 2
        assert body["current"]["data"]["answers"][0] == "In the kitchen"
        assert body["current"]["updated_at"]
        assert body["yours"] == {"data": {"answers": ["Typed in an old tab"]}}

        new_again = await client.put(url, json={"data": {"answers": ["x"]}, "version": 0})
        assert new_again.status_code == 409 and new_again.json()["current"]["version"] == 2

        read = await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")
        saved = next(e for e in read.json()["exercises"] if e["id"] == "my-circle")["response"]
        assert saved["data"]["answers"][0] == "In the kitchen" and saved["version"] == 2
        conflicts = await audit_rows(db, action="save_draft", outcome="conflict")
        assert len(conflicts) == 2

    async def test_invalid_fields_are_422_naming_each_field_and_the_draft_is_kept(
        self, client, db, clock, app
    ):
        _world, enrollment = await patient_client(client, db, clock, program="insomnia")
        url = f"{API}/enrollments/{enrollment.id}/exercises/01-understanding-your-sleep/sleep-diary-week-1"
        typed = {"nights": [{**SLEEP_NIGHT, "minutes_to_sleep": "half an hour", "quality": 9}]}
        r = await client.put(url, json={"data": typed, "version": 0})
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "invalid_exercise" and body["saved"] is True
        assert {e["field"] for e in body["detail"]} == {
            "nights.0.minutes_to_sleep",
            "nights.0.quality",
        }
        messages = {e["field"]: e["message"] for e in body["detail"]}
        assert messages["nights.0.minutes_to_sleep"] == "Please enter a whole number."
        assert messages["nights.0.quality"] == "Please enter 5 or less."
        assert body["response"]["version"] == 1 and body["response"]["data"] == typed

        row = await db.scalar(
            select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
        )
        assert row.status == "draft"
        assert "half an hour" not in row.data_encrypted  # encrypted at rest
        assert json.loads(app.state.cipher.decrypt(row.data_encrypted)) == typed

        fixed = await client.put(url, json={"data": {"nights": [SLEEP_NIGHT]}, "version": 1})
        assert fixed.status_code == 200 and fixed.json()["response"]["version"] == 2
        assert fixed.json()["response"]["data"]["nights"][0]["bed_time"] == "23:00:00"

    async def test_exercise_saved_is_logged_at_most_once_a_minute(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        url = CIRCLE.format(id=enrollment.id)
        version = 0
        for text in ("a", "ab", "abc"):
            r = await client.put(url, json={"data": {"answers": [text]}, "version": version})
            version = r.json()["response"]["version"]
            clock.advance(timedelta(seconds=10))
        assert len(await events(db, enrollment.id, "exercise_saved")) == 1
        clock.advance(timedelta(seconds=45))
        await client.put(url, json={"data": {"answers": ["abcd"]}, "version": version})
        saved = await events(db, enrollment.id, "exercise_saved")
        assert len(saved) == 2
        assert saved[0].detail == {"module": DEP1, "exercise": "my-circle", "type": "free_text"}
        assert len(await audit_rows(db, action="save_draft", outcome="ok")) == 4

    async def test_no_writes_after_the_program_has_ended(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        enrollment.status = EnrollmentStatus.COMPLETED
        db.add(enrollment)
        await db.commit()
        r = await client.put(CIRCLE.format(id=enrollment.id), json={"data": {}, "version": 0})
        assert r.status_code == 409 and r.json()["code"] == "enrollment_ended"


class TestSubmit:
    async def test_sleep_efficiency_is_derived_and_stored(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock, program="insomnia")
        url = f"{API}/enrollments/{enrollment.id}/exercises/01-understanding-your-sleep/sleep-diary-week-1"
        r = await client.post(
            f"{url}/submit", json={"data": {"nights": [SLEEP_NIGHT]}, "version": 0}
        )
        assert r.status_code == 200, r.text
        response = r.json()["response"]
        assert response["status"] == "submitted" and response["submitted_at"]
        # 8 h in bed; asleep 7 h - 30 - 30 min = 6 h = 75 %.
        assert response["derived"]["mean_sleep_efficiency"] == 75.0
        row = await db.scalar(
            select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
        )
        assert row.derived["nights"][0] == {
            "date": "2026-03-02",
            "time_in_bed_min": 480,
            "total_sleep_min": 360,
            "sleep_efficiency": 75.0,
        }
        submitted = await events(db, enrollment.id, "exercise_submitted")
        assert submitted[0].detail["type"] == "sleep_diary"
        assert len(await audit_rows(db, action="submit", outcome="ok")) == 1

    async def test_an_incomplete_submission_is_422_and_kept_as_a_draft(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        url = CIRCLE.format(id=enrollment.id)
        r = await client.post(
            f"{url}/submit", json={"data": {"answers": ["Only the first"]}, "version": 0}
        )
        assert r.status_code == 422
        body = r.json()
        assert {e["field"] for e in body["detail"]} == {f"answers.{i}" for i in range(1, 5)}
        assert body["saved"] is True and body["response"]["status"] == "draft"
        assert body["response"]["data"]["answers"][0] == "Only the first"
        assert await events(db, enrollment.id, "exercise_submitted") == []

    async def test_submitting_the_saved_draft(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        url = CIRCLE.format(id=enrollment.id)
        answers = [f"Answer {i}" for i in range(5)]
        await client.put(url, json={"data": {"answers": answers}, "version": 0})
        stale = await client.post(f"{url}/submit", json={"version": 0})
        assert stale.status_code == 409 and stale.json()["code"] == "stale_draft"
        assert len(await audit_rows(db, action="submit", outcome="conflict")) == 1
        r = await client.post(f"{url}/submit", json={"version": 1})
        assert r.status_code == 200 and r.json()["response"]["data"]["answers"] == answers

    async def test_grams_per_standard_drink_comes_from_settings(self, database, clock, db):
        app = create_app(
            make_settings(grams_per_standard_drink=10.0), database=database, clock=clock
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        _world, enrollment = await patient_client(client, db, clock, program="alcohol")
        url = f"{API}/enrollments/{enrollment.id}/exercises/01-alcohol-and-you/drinking-diary"
        day = {
            "date": "2026-03-02",
            "drinks": [{"kind": "Wine", "volume_ml": 1000, "abv": 12.0}],
            "urge": 4,
        }
        r = await client.post(f"{url}/submit", json={"data": {"days": [day]}, "version": 0})
        assert r.status_code == 200, r.text
        derived = r.json()["response"]["derived"]
        # 1000 ml x 12 % x 0.789 g/ml = 94.68 g = 9.5 drinks of 10 g; a heavy day (>= 60 g).
        assert derived["grams_per_standard_drink"] == 10.0
        assert derived["total_standard_drinks"] == 9.5
        assert derived["heavy_drinking_days"] == 1


class TestCompletion:
    async def test_homework_must_be_submitted_first(self, client, db, clock):
        _world, enrollment = await patient_client(client, db, clock)
        r = await client.post(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}/complete")
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "homework_missing"
        assert [m["id"] for m in body["missing"]] == ["my-circle", "my-starting-point"]
        assert "My own low-mood circle" in body["detail"]
        assert by_ref(await path_of(client, enrollment.id))[DEP1]["status"] == "available"

    async def test_completing_opens_the_next_after_the_minimum_days(self, client, db, clock):
        world, enrollment = await patient_client(client, db, clock)
        module = (await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()
        await submit_all(client, enrollment.id, module)
        r = await client.post(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}/complete")
        assert r.status_code == 200
        body = r.json()
        assert body["completed"] == 1 and body["total"] == 10
        assert body["next"]["ref"] == DEP2
        assert body["next"]["locked_reason"] == "Opens on 7 March"  # depression: 5 days
        again = await client.post(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}/complete")
        assert again.status_code == 200
        assert len(await events(db, enrollment.id, "module_completed")) == 1
        clock.advance(timedelta(days=5))
        await login(client, world.patient_user.email)
        assert by_ref(await path_of(client, enrollment.id))[DEP2]["status"] == "available"


class TestWhoSeesWhat:
    async def test_therapist_sees_submitted_answers_only_and_admin_none(
        self, client, client_factory, db, clock
    ):
        world, enrollment = await patient_client(client, db, clock)
        url = f"{API}/enrollments/{enrollment.id}/exercises/{DEP1}"
        module = (await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()
        circle = next(e for e in module["exercises"] if e["id"] == "my-circle")
        await client.post(
            f"{url}/my-circle/submit", json={"data": valid_data(circle["fields"]), "version": 0}
        )
        await client.put(
            f"{url}/my-starting-point", json={"data": {"answers": ["private draft"]}, "version": 0}
        )

        therapist = client_factory()
        await login(therapist, world.therapist.email)
        seen = (await therapist.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()
        responses = {e["id"]: e["response"] for e in seen["exercises"]}
        assert responses["my-circle"]["data"]["answers"][0].startswith("I noticed")
        assert responses["my-starting-point"]["status"] == "draft"
        assert responses["my-starting-point"]["data"] is None
        work = (await therapist.get(f"{API}/enrollments/{enrollment.id}/exercises")).json()
        assert [w["exercise_id"] for w in work] == ["my-circle"]

        admin = client_factory()
        await login(admin, world.admin.email)
        seen = (await admin.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()
        assert all(
            e["response"] is None or e["response"]["data"] is None for e in seen["exercises"]
        )
        work = (await admin.get(f"{API}/enrollments/{enrollment.id}/exercises")).json()
        assert [
            (w["exercise_id"], w["response"]["data"], w["response"]["derived"]) for w in work
        ] == [("my-circle", None, None)]
        mine = (await client.get(f"{API}/enrollments/{enrollment.id}/exercises")).json()
        assert {w["exercise_id"] for w in mine} == {"my-circle", "my-starting-point"}

    async def test_staff_cannot_write_answers(self, client, client_factory, db, clock):
        world, enrollment = await patient_client(client, db, clock)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        r = await therapist.put(CIRCLE.format(id=enrollment.id), json={"data": {}, "version": 0})
        assert r.status_code == 403

    async def test_another_patient_gets_404(self, client, client_factory, db, clock):
        world, enrollment = await patient_client(client, db, clock)
        other = client_factory()
        await login(other, world.other_patient_user.email)
        r = await other.put(CIRCLE.format(id=enrollment.id), json={"data": {}, "version": 0})
        assert r.status_code == 404
        r = await other.get(f"{API}/enrollments/{enrollment.id}/modules")
        assert r.status_code == 404


class TestCatalogue:
    async def test_programs_come_from_the_content_library(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        programs = (await client.get(f"{API}/programs")).json()
        assert [p["slug"] for p in programs][:2] == ["depression", "gad"] and len(programs) == 9
        assert all(p["module_count"] >= 6 and p["weeks"] and p["summary"] for p in programs)
        detail = (await client.get(f"{API}/programs/insomnia")).json()
        assert detail["pacing"] == {
            "unlock": "sequential",
            "therapist_gate": True,
            "min_days_between_modules": 7,
        }
        assert detail["modules"][0]["key"] == "01-understanding-your-sleep"
        assert detail["modules"][0]["minutes"] > 0 and detail["modules"][0]["homework"] >= 1
        assert (await client.get(f"{API}/programs/astrology")).status_code == 404
