"""Patient and therapist pages for modules and exercises, all usable without JavaScript."""

from __future__ import annotations

import json
import re
from html import unescape

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.programs.models import ExerciseResponse
from tests.factories import build_world, create_enrollment, login
from tests.programs.helpers import API, submit_all
from tests.querycount import count_statements

DEP1 = "01-understanding-low-mood"
READER = f"/patient/modules/depression/{DEP1}"
SLEEP1 = "/patient/modules/insomnia/01-understanding-your-sleep"


def text_of(html: str) -> str:
    """The page's words, roughly as read: tags become spaces, no space before punctuation."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return unescape(re.sub(r" ([:.,;”])", r"\1", text))


async def as_patient(client, db, clock, program: str = "depression"):
    world = await build_world(db, clock.now())
    user, enrollment = world.patient_user, world.enrollment
    if program != "depression":
        user, _, enrollment = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), program=program
        )
        await db.commit()
    token = await login(client, user.email)
    return world, enrollment, token


class TestDashboard:
    async def test_shows_where_they_are_and_what_is_next(self, client, db, clock):
        world, _enrollment, _ = await as_patient(client, db, clock)
        r = await client.get("/patient")
        assert r.status_code == 200
        page = text_of(r.text)
        assert f"Hello, {world.patient_user.first_name}" in page
        assert "Lifting low mood, step by step" in page
        assert f"Your therapist is {world.therapist.full_name}" in page
        assert "You have completed 0 of 10 modules" in page
        assert '<progress max="10" value="0"' in r.text
        assert "Start module 1" in page and f'href="{READER}"' in r.text
        assert 'href="/patient/questionnaires/phq9"' in r.text  # baseline questionnaire is due
        assert "112" in page  # crisis contacts on every patient page
        reads = await db.scalars(select(AuditEvent).where(AuditEvent.resource_type == "dashboard"))
        assert len(list(reads)) == 1

    async def test_after_completing_a_module(self, client, db, clock):
        _world, enrollment, _ = await as_patient(client, db, clock)
        module = (await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()
        await submit_all(client, enrollment.id, module)
        done = await client.post(f"{READER}/complete", data={})
        assert done.status_code == 303 and done.headers["location"] == f"/patient?completed={DEP1}"
        page = text_of((await client.get(done.headers["location"])).text)
        assert "Well done: you completed “Welcome, and understanding low mood”" in page
        assert "You have completed 1 of 10 modules" in page
        assert "Opens on 7 March" in page


class TestModuleList:
    async def test_statuses_in_words(self, client, db, clock):
        await as_patient(client, db, clock)
        r = await client.get("/patient/modules")
        assert r.status_code == 200
        page = text_of(r.text)
        assert "Ready to start" in page
        assert "Not open yet: Opens when you complete module 1" in page

    async def test_statement_count_is_the_same_for_6_and_10_modules(
        self, client, client_factory, db, clock, engine
    ):
        world = await build_world(db, clock.now())
        small_user, _, small = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), program="alcohol"
        )
        await db.commit()
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        for key in ("07-saying-no", "08-staying-on-track"):  # 8 - 2 hidden = 6 shown
            r = await therapist.post(
                f"{API}/enrollments/{small.id}/tailoring", json={"action": "hide", "module": key}
            )
            assert r.status_code == 201
        shown = []
        counts = []
        for email in (small_user.email, world.patient_user.email):
            patient = client_factory()
            await login(patient, email)
            await patient.get("/patient/modules")
            with count_statements(engine) as log:
                r = await patient.get("/patient/modules")
            assert r.status_code == 200
            shown.append(r.text.count('class="path-item '))
            counts.append(log.count)
        assert shown == [6, 10]
        assert counts[0] == counts[1]


class TestReader:
    async def test_page_by_page_with_the_exercise_in_place(self, client, db, clock):
        _world, enrollment, _ = await as_patient(client, db, clock)
        first = await client.get(READER)
        assert first.status_code == 200
        assert "page 1 of" in text_of(first.text)
        assert f'href="{READER}?page=2"' in first.text
        assert '<script src="/static/js/autosave.js" defer></script>' in first.text
        pages = (await client.get(f"{API}/enrollments/{enrollment.id}/modules/{DEP1}")).json()[
            "pages"
        ]
        where = next(
            p["number"] for p in pages for s in p["segments"] if s["exercise_id"] == "my-circle"
        )
        r = await client.get(f"{READER}?page={where}")
        assert 'id="x-my-circle"' in r.text
        assert (
            f'data-autosave-url="/api/v1/enrollments/{enrollment.id}/exercises/{DEP1}/my-circle"'
            in r.text
        )
        assert 'name="answers.0"' in r.text and '<label for="x-my-circle-answers-0">' in r.text
        last = await client.get(f"{READER}?page={len(pages)}")
        assert "I have finished this module" in last.text
        assert f'href="{READER}?page={len(pages) - 1}"' in last.text
        beyond = await client.get(f"{READER}?page=999")
        assert beyond.status_code == 200 and "I have finished this module" in beyond.text

    async def test_locked_module_page_gives_the_reason(self, client, db, clock):
        await as_patient(client, db, clock)
        r = await client.get("/patient/modules/depression/02-activity-and-mood")
        assert r.status_code == 403
        assert "Opens when you complete module 1" in text_of(r.text)

    async def test_module_not_on_the_path_is_404(self, client, db, clock):
        await as_patient(client, db, clock)
        assert (
            await client.get("/patient/modules/insomnia/03-your-sleep-window")
        ).status_code == 404
        assert (await client.get("/patient/modules/nowhere/01-x")).status_code == 404


class TestExerciseForm:
    async def test_save_draft_without_javascript(self, client, db, clock):
        _world, _enrollment, token = await as_patient(client, db, clock)
        r = await client.post(
            f"{READER}/exercises/my-circle",
            data={"csrf_token": token, "version": "0", "action": "save", "answers.0": "On the bus"},
        )
        assert r.status_code == 303
        assert re.fullmatch(
            rf"{READER}\?page=\d+&saved=my-circle#x-my-circle", r.headers["location"]
        )
        page = await client.get(r.headers["location"].split("#")[0])
        assert "Your draft is saved." in page.text
        assert ">On the bus</textarea>" in page.text
        assert 'name="version" value="1"' in page.text

    async def test_errors_are_shown_beside_the_fields_and_typed_values_kept(
        self, client, db, clock, app
    ):
        _world, enrollment, token = await as_patient(client, db, clock, program="insomnia")
        form = {
            "csrf_token": token,
            "version": "0",
            "action": "submit",
            "nights.0.date": "2026-03-02",
            "nights.0.bed_time": "23:00",
            "nights.0.minutes_to_sleep": "half an hour",
            "nights.0.times_woken": "2",
            "nights.0.quality": "9",
        }
        r = await client.post(f"{SLEEP1}/exercises/sleep-diary-week-1", data=form)
        assert r.status_code == 422
        html = r.text
        field_id = "x-sleep-diary-week-1-nights-0-minutes_to_sleep"
        assert f'id="{field_id}" name="nights.0.minutes_to_sleep" value="half an hour"' in html
        assert f'aria-invalid="true" aria-describedby="e-{field_id} h-{field_id}"' in html
        assert f'<p class="error" id="e-{field_id}">Please enter a whole number.</p>' in html
        assert f'href="#{field_id}"' in html  # the summary links to the field
        assert "Please enter 5 or less." in html
        assert 'value="23:00"' in html
        assert "What you typed is kept" in text_of(html)
        row = await db.scalar(
            select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
        )
        kept = json.loads(app.state.cipher.decrypt(row.data_encrypted))
        assert kept["nights"][0]["minutes_to_sleep"] == "half an hour" and row.status == "draft"
        assert 'name="version" value="1"' in html  # the next save goes on top of the kept draft

    async def test_add_and_remove_rows_without_javascript(self, client, db, clock):
        _world, _enrollment, token = await as_patient(client, db, clock, program="insomnia")
        url = f"{SLEEP1}/exercises/sleep-diary-week-1"
        r = await client.post(
            url,
            data={
                "csrf_token": token,
                "version": "0",
                "action": "add_row:nights",
                "nights.0.bed_time": "22:45",
            },
        )
        assert r.status_code == 303
        page = (await client.get(r.headers["location"].split("#")[0])).text
        assert 'name="nights.1.bed_time"' in page and 'value="22:45"' in page
        assert "Row 2" in text_of(page)
        r = await client.post(
            url,
            data={
                "csrf_token": token,
                "version": "1",
                "action": "remove_row:nights.0",
                "nights.0.bed_time": "22:45",
                "nights.1.bed_time": "23:10",
            },
        )
        assert r.status_code == 303
        page = (await client.get(r.headers["location"].split("#")[0])).text
        assert 'value="23:10"' in page and 'value="22:45"' not in page

    async def test_submit_through_the_form(self, client, db, clock):
        _world, enrollment, token = await as_patient(client, db, clock, program="insomnia")
        form = {
            "csrf_token": token,
            "version": "0",
            "action": "submit",
            "nights.0.date": "2026-03-02",
            "nights.0.bed_time": "23:00",
            "nights.0.minutes_to_sleep": "30",
            "nights.0.times_woken": "2",
            "nights.0.minutes_awake": "30",
            "nights.0.final_wake": "06:00",
            "nights.0.out_of_bed": "07:00",
            "nights.0.quality": "3",
            "nights.1.bed_time": "",  # an untouched extra row is left out
        }
        r = await client.post(f"{SLEEP1}/exercises/sleep-diary-week-1", data=form)
        assert r.status_code == 303, text_of(r.text)[:500]
        page = await client.get(r.headers["location"].split("#")[0])
        assert "Thank you, that is submitted." in page.text
        row = await db.scalar(
            select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
        )
        assert row.status == "submitted" and row.derived["mean_sleep_efficiency"] == 75.0

    async def test_a_conflict_shows_both_versions(self, client, db, clock):
        _world, enrollment, token = await as_patient(client, db, clock)
        url = f"{API}/enrollments/{enrollment.id}/exercises/{DEP1}/my-circle"
        await client.put(url, json={"data": {"answers": ["Saved in another tab"]}, "version": 0})
        r = await client.post(
            f"{READER}/exercises/my-circle",
            data={"csrf_token": token, "version": "0", "action": "save", "answers.0": "Typed here"},
        )
        assert r.status_code == 409
        page = text_of(r.text)
        assert "This was changed somewhere else" in page and "Nothing has been overwritten" in page
        assert ">Typed here</textarea>" in r.text  # their version, in the form
        assert "Saved in another tab" in page  # the saved one, shown below
        assert 'name="version" value="1"' in r.text

    async def test_completing_without_homework_explains_what_is_missing(self, client, db, clock):
        _world, _enrollment, token = await as_patient(client, db, clock)
        r = await client.post(f"{READER}/complete", data={"csrf_token": token})
        assert r.status_code == 409
        page = text_of(r.text)
        assert "Please submit this first: My own low-mood circle" in page
        assert 'href="#x-my-circle"' in r.text


class TestTherapistPage:
    async def test_modules_submitted_work_and_tailoring(self, client, client_factory, db, clock):
        world, enrollment, _ = await as_patient(client, db, clock, program="insomnia")
        url = f"{API}/enrollments/{enrollment.id}/exercises/01-understanding-your-sleep/sleep-diary-week-1"
        night = {
            "date": "2026-03-02",
            "bed_time": "23:00",
            "minutes_to_sleep": 30,
            "times_woken": 2,
            "minutes_awake": 30,
            "final_wake": "06:00",
            "out_of_bed": "07:00",
            "quality": 3,
        }
        await client.post(f"{url}/submit", json={"data": {"nights": [night]}, "version": 0})
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        home = await therapist.get("/therapist")
        assert f'href="/therapist/patients/{enrollment.id}"' in home.text
        r = await therapist.get(f"/therapist/patients/{enrollment.id}")
        assert r.status_code == 200
        page = text_of(r.text)
        assert "1 Understanding your sleep Ready to start" in page
        assert "2 How sleep works Not open yet: Opens when module 1 is completed" in page
        assert "My sleep diary Understanding your sleep · submitted 02.03.2026 11:00" in page
        assert "Got into bed" in page and "<td>23:00</td>" in r.text
        assert "Sleep efficiency (%)" in page and "Mean sleep efficiency (%) 75" in page
        assert "Add a module from another program" in page and "Tailoring history" in page
        assert "Questionnaires" in page  # the questionnaires domain's section is included
        reads = await db.scalars(
            select(AuditEvent).where(AuditEvent.resource_type == "patient_work")
        )
        assert len(list(reads)) == 1

    async def test_tailoring_from_the_page(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        therapist = client_factory()
        token = await login(therapist, world.therapist.email)
        base = f"/therapist/patients/{world.enrollment.id}"
        r = await therapist.post(
            f"{base}/tailoring",
            data={
                "csrf_token": token,
                "action": "add_module",
                "module": "insomnia/03-your-sleep-window",
                "after": DEP1,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == f"{base}?done=1#tailoring"
        page = await therapist.get(f"{base}?done=1")
        text = text_of(page.text)
        assert "Added from Finding your way back to sleep" in text
        assert "Added “Your sleep window” from Finding your way back to sleep" in text
        change_id = re.search(r"/tailoring/(\d+)/revert", page.text).group(1)
        r = await therapist.post(f"{base}/tailoring/{change_id}/revert", data={"csrf_token": token})
        assert r.status_code == 303
        assert "Undone" in text_of((await therapist.get(base)).text)

    async def test_form_errors_keep_what_was_typed(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        therapist = client_factory()
        token = await login(therapist, world.therapist.email)
        base = f"/therapist/patients/{world.enrollment.id}"
        r = await therapist.post(
            f"{base}/tailoring",
            data={
                "csrf_token": token,
                "action": "set_pacing",
                "therapist_gate": "on",
                "min_days_between_modules": "lots",
            },
        )
        assert r.status_code == 422
        assert 'value="lots"' in r.text and 'aria-describedby="e-days"' in r.text
        assert '<option value="on" selected>' in r.text
        r = await therapist.post(
            f"{base}/tailoring",
            data={"csrf_token": token, "action": "remove_module", "module": "02-activity-and-mood"},
        )
        assert r.status_code == 409 and "Only modules added from another program" in text_of(r.text)
        r = await therapist.post(f"{base}/tailoring", data={"csrf_token": token})
        assert r.status_code == 422 and "Choose what to change." in r.text

    async def test_other_therapists_get_404(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        other = client_factory()
        await login(other, world.other_therapist.email)
        assert (await other.get(f"/therapist/patients/{world.enrollment.id}")).status_code == 404
