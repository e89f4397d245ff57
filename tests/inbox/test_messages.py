"""Sending and reading messages: encryption, receipts, anchors, limits, idempotency, XSS, roles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from app.adherence.models import AdherenceEvent
from app.audit.models import AuditEvent
from app.clinics.models import EnrollmentStatus
from app.common.idempotency_models import IdempotencyRecord
from app.inbox.models import Message
from tests.factories import build_world, create_enrollment, login
from tests.inbox.helpers import create_message, exercise_response_id, submit_exercise

API = "/api/v1"
XSS = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "a & b\nsecond line"]


def thread_url(enrollment_id: int) -> str:
    return f"{API}/enrollments/{enrollment_id}/messages"


async def events(db, kind: str) -> list[AdherenceEvent]:
    return list(await db.scalars(select(AdherenceEvent).where(AdherenceEvent.kind == kind)))


class TestSending:
    async def test_therapist_and_patient_write_and_bodies_are_encrypted_at_rest(
        self, client_factory, db, clock, app
    ):
        world = await build_world(db, clock.now())
        therapist, patient = client_factory(), client_factory()
        await login(therapist, world.therapist.email)
        await login(patient, world.patient_user.email)
        r = await therapist.post(
            thread_url(world.enrollment.id),
            json={"body": "Welcome!\nI am glad you started.", "functions": ["alliance"]},
        )
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["sender_role"] == "therapist" and sent["functions"] == ["alliance"]
        assert sent["sender"]["full_name"] == world.therapist.full_name
        clock.advance(timedelta(minutes=20))
        r = await patient.post(thread_url(world.enrollment.id), json={"body": "Thank you"})
        assert r.status_code == 201 and r.json()["sender_role"] == "patient"

        stored = await db.scalar(
            text("SELECT body_encrypted FROM message WHERE id = :id").bindparams(id=sent["id"])
        )
        assert "glad" not in stored
        assert app.state.cipher.decrypt(stored) == "Welcome!\nI am glad you started."
        listed = (await patient.get(thread_url(world.enrollment.id))).json()
        assert [m["body"] for m in listed["items"]] == [
            "Welcome!\nI am glad you started.",
            "Thank you",
        ]

        sent_events = await events(db, "message_sent")
        assert sorted(e.actor_role for e in sent_events) == ["patient", "therapist"]
        writes = await db.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "message", AuditEvent.action == "create"
            )
        )
        assert len(list(writes)) == 2

    async def test_patients_cannot_tag_and_ended_treatments_take_no_messages(
        self, client, db, clock
    ):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post(
            thread_url(world.enrollment.id), json={"body": "Hi", "functions": ["autonomy"]}
        )
        assert r.status_code == 422
        world.enrollment.status = EnrollmentStatus.COMPLETED
        await db.commit()
        r = await client.post(thread_url(world.enrollment.id), json={"body": "Hi"})
        assert r.status_code == 409 and r.json()["code"] == "enrollment_ended"

    async def test_a_thread_that_is_not_yours_is_404(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        for enrollment in (world.other_enrollment, world.other_clinic_enrollment):
            r = await client.post(thread_url(enrollment.id), json={"body": "Hi"})
            assert r.status_code == 404
            assert (await client.get(thread_url(enrollment.id))).status_code == 404
        page = await client.post(
            f"/therapist/patients/{world.other_enrollment.id}/messages", data={"body": "Hi"}
        )
        assert page.status_code == 404
        assert await db.scalar(select(func.count()).select_from(Message)) == 0

    async def test_empty_and_too_long_are_422(self, client, db, clock, settings):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        for body in ("", "   \n  ", "x" * (settings.message_max_length + 1)):
            r = await client.post(thread_url(world.enrollment.id), json={"body": body})
            assert r.status_code == 422, body[:10]
            assert r.json()["code"] in ("empty_message", "message_too_long")
        ok = await client.post(
            thread_url(world.enrollment.id), json={"body": "y" * settings.message_max_length}
        )
        assert ok.status_code == 201

    async def test_a_missing_body_names_the_field(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        for payload in ({}, {"body": 12}):
            r = await client.post(thread_url(world.enrollment.id), json=payload)
            assert r.status_code == 422, r.text
            assert [e["field"] for e in r.json()["detail"]] == ["body"], r.text

    async def test_pages_keep_the_text_on_422(self, client_factory, db, clock, settings):
        world = await build_world(db, clock.now())
        patient, therapist = client_factory(), client_factory()
        patient_token = await login(patient, world.patient_user.email)
        therapist_token = await login(therapist, world.therapist.email)
        long = "Long words & more\n" * 400
        assert len(long) > settings.message_max_length
        r = await patient.post(
            "/patient/messages", data={"csrf_token": patient_token, "body": long}
        )
        assert r.status_code == 422
        assert "Long words &amp; more\nLong words" in r.text
        assert 'aria-describedby="e-body h-body"' in r.text and 'id="e-body"' in r.text
        assert "the limit is 5,000" in r.text
        r = await patient.post(
            "/patient/messages", data={"csrf_token": patient_token, "body": "  "}
        )
        assert r.status_code == 422 and "Write a message before sending." in r.text
        r = await therapist.post(
            f"/therapist/patients/{world.enrollment.id}/messages",
            data={"csrf_token": therapist_token, "body": long, "tag_autonomy": "on"},
        )
        assert r.status_code == 422
        assert "Long words &amp; more" in r.text
        assert 'name="tag_autonomy" value="on" checked' in r.text
        assert await db.scalar(select(func.count()).select_from(Message)) == 0

    async def test_a_retried_send_creates_one_message(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        headers = {"Idempotency-Key": "send-1"}
        body = {"body": "Only once, please", "functions": ["alliance"]}
        first = await client.post(thread_url(world.enrollment.id), json=body, headers=headers)
        second = await client.post(thread_url(world.enrollment.id), json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert first.json() == second.json()
        assert await db.scalar(select(func.count()).select_from(Message)) == 1
        # The stored answer keeps the id only: the text stays encrypted at rest.
        stored = await db.scalar(select(IdempotencyRecord.response_body))
        assert "Only once" not in str(stored)
        changed = await client.post(
            thread_url(world.enrollment.id), json={"body": "Different"}, headers=headers
        )
        assert changed.status_code == 422 and changed.json()["code"] == "idempotency_mismatch"

    async def test_a_resubmitted_form_sends_once(self, client, db, clock):
        world = await build_world(db, clock.now())
        token = await login(client, world.patient_user.email)
        form = {"csrf_token": token, "body": "Double click", "idempotency_key": "form-key-1"}
        for _ in range(2):
            r = await client.post("/patient/messages", data=form, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith(
                "/patient/messages?sent=1"
            )
        assert await db.scalar(select(func.count()).select_from(Message)) == 1


class TestReading:
    async def test_opening_the_thread_sets_read_receipts_and_logs_reading(
        self, client_factory, db, clock, app
    ):
        world = await build_world(db, clock.now())
        await create_message(db, world.enrollment, world.therapist, app.state.cipher, body="Hello")
        patient, therapist = client_factory(), client_factory()
        await login(patient, world.patient_user.email)
        await login(therapist, world.therapist.email)
        home = await patient.get("/patient")
        assert 'aria-label="Messages, 1 unread"' in home.text
        assert "Messages, 1 unread" not in (await therapist.get("/therapist")).text
        clock.advance(timedelta(minutes=5))
        page = await patient.get("/patient/messages")
        assert page.status_code == 200
        assert "You have 1 new reply" in page.text and "tag-new" in page.text
        assert "Messages, 1 unread" not in page.text  # the badge follows what was just read
        stored = await db.scalar(select(Message).execution_options(populate_existing=True))
        assert stored.read_at == clock.now() and stored.read_by_id == world.patient_user.id
        assert [e.actor_role for e in await events(db, "message_read")] == ["patient"]
        again = await patient.get("/patient/messages")
        assert "new repl" not in again.text
        assert len(await events(db, "message_read")) == 1

        # The patient writes; the therapist's view shows the receipt only after they open it.
        await patient.post(thread_url(world.enrollment.id), json={"body": "Thanks!"})
        listed = (await patient.get(thread_url(world.enrollment.id))).json()["items"]
        assert listed[-1]["read_at"] is None
        assert "Not read yet" in (await patient.get("/patient/messages")).text
        clock.advance(timedelta(minutes=20))
        assert 'aria-label="Messages, 1 unread"' in (await therapist.get("/therapist")).text
        page = await therapist.get(f"/therapist/patients/{world.enrollment.id}/messages")
        assert page.status_code == 200 and "tag-new" in page.text
        listed = (await patient.get(thread_url(world.enrollment.id))).json()["items"]
        assert listed[-1]["read_at"] is not None
        assert "Read " in (await patient.get("/patient/messages")).text
        roles = sorted(e.actor_role for e in await events(db, "message_read"))
        assert roles == ["patient", "therapist"]
        reads = await db.scalars(
            select(AuditEvent).where(AuditEvent.resource_type == "message_thread")
        )
        assert {a.actor_user_id for a in reads} == {world.patient_user.id, world.therapist.id}

    async def test_mark_read_api_marks_this_and_earlier_and_ignores_your_own(
        self, client, db, clock, app
    ):
        world = await build_world(db, clock.now())
        cipher = app.state.cipher
        first = await create_message(db, world.enrollment, world.therapist, cipher, body="1")
        second = await create_message(db, world.enrollment, world.therapist, cipher, body="2")
        third = await create_message(db, world.enrollment, world.therapist, cipher, body="3")
        mine = await create_message(db, world.enrollment, world.patient_user, cipher, body="me")
        await login(client, world.patient_user.email)
        r = await client.post(f"{API}/messages/{second.id}/read")
        assert r.status_code == 200 and r.json()["read_at"] is not None
        items = {
            m["id"]: m for m in (await client.get(thread_url(world.enrollment.id))).json()["items"]
        }
        assert items[first.id]["read_at"] and items[second.id]["read_at"]
        assert items[third.id]["read_at"] is None
        r = await client.post(f"{API}/messages/{mine.id}/read")
        assert r.status_code == 200 and r.json()["read_at"] is None
        assert (await client.post(f"{API}/messages/999999/read")).status_code == 404

    async def test_older_messages_page_backwards(self, client, db, clock, app):
        world = await build_world(db, clock.now())
        for i in range(5):
            await create_message(
                db,
                world.enrollment,
                world.therapist,
                app.state.cipher,
                body=f"m{i}",
                at=clock.now() + timedelta(minutes=i),
                commit=False,
            )
        await db.commit()
        await login(client, world.patient_user.email)
        page = (await client.get(thread_url(world.enrollment.id), params={"limit": 2})).json()
        assert [m["body"] for m in page["items"]] == ["m3", "m4"] and page["has_earlier"]
        earlier = (
            await client.get(
                thread_url(world.enrollment.id),
                params={"limit": 2, "before": page["items"][0]["id"]},
            )
        ).json()
        assert [m["body"] for m in earlier["items"]] == ["m1", "m2"] and earlier["has_earlier"]


class TestAnchoredFeedback:
    async def test_feedback_anchored_to_an_exercise_shows_beside_it(
        self, client_factory, db, clock
    ):
        world = await build_world(db, clock.now())
        patient, therapist = client_factory(), client_factory()
        await login(patient, world.patient_user.email)
        therapist_token = await login(therapist, world.therapist.email)
        await submit_exercise(patient, world.enrollment.id)
        response_id = await exercise_response_id(db, world.enrollment.id)

        page = await therapist.get(
            f"/therapist/patients/{world.enrollment.id}/messages",
            params={"anchor": f"exercise-{response_id}"},
        )
        assert f'<option value="exercise-{response_id}" selected>' in page.text
        assert "My own low-mood circle" in page.text
        r = await therapist.post(
            f"/therapist/patients/{world.enrollment.id}/messages",
            data={
                "csrf_token": therapist_token,
                "body": "You noticed the link between\nthought and mood. Well spotted.",
                "anchor": f"exercise-{response_id}",
                "tag_alliance": "on",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        message = await db.scalar(select(Message))
        assert message.exercise_response_id == response_id and message.functions == ["alliance"]

        module = await patient.get("/patient/modules/depression/01-understanding-low-mood?page=3")
        html = module.text
        assert "Feedback from your therapist" in html
        assert "You noticed the link between<br>\nthought and mood." in html
        assert html.index("Feedback from your therapist") > html.index('id="x-my-circle"')
        assert [e.detail["where"] for e in await events(db, "feedback_read")] == ["exercise"]
        thread = (await patient.get(thread_url(world.enrollment.id))).json()["items"]
        assert thread[0]["anchor"] == {
            "kind": "exercise",
            "id": response_id,
            "title": "My own low-mood circle (Welcome, and understanding low mood)",
        }

    async def test_an_anchor_from_another_enrollment_is_422(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        other_user, _, other = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), name="Other Patient"
        )
        await db.commit()
        patient = client_factory()
        await login(patient, other_user.email)
        await submit_exercise(patient, other.id)
        foreign = await exercise_response_id(db, other.id)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        r = await therapist.post(
            thread_url(world.enrollment.id), json={"body": "Nice", "exercise_response_id": foreign}
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_anchor"
        r = await therapist.post(
            thread_url(world.enrollment.id),
            json={"body": "Nice", "questionnaire_response_id": 999999},
        )
        assert r.status_code == 422
        r = await therapist.post(
            thread_url(world.enrollment.id),
            json={"body": "x", "exercise_response_id": foreign, "questionnaire_response_id": 1},
        )
        assert r.status_code == 422
        assert await db.scalar(select(func.count()).select_from(Message)) == 0
        # The same anchor on its own thread is fine.
        r = await therapist.post(
            thread_url(other.id), json={"body": "Nice", "exercise_response_id": foreign}
        )
        assert r.status_code == 201 and r.json()["anchor"]["kind"] == "exercise"


class TestAdmins:
    async def test_admin_sees_metadata_and_stats_never_bodies(self, client_factory, db, clock, app):
        world = await build_world(db, clock.now())
        cipher = app.state.cipher
        await create_message(
            db, world.enrollment, world.patient_user, cipher, body="My secret worry"
        )
        clock.advance(timedelta(hours=5))
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        await therapist.post(
            thread_url(world.enrollment.id),
            json={"body": "Private reply", "functions": ["emotion_regulation"]},
        )
        admin = client_factory()
        await login(admin, world.admin.email)
        r = await admin.get(thread_url(world.enrollment.id))
        assert r.status_code == 200
        assert [m["body"] for m in r.json()["items"]] == [None, None]
        assert "secret" not in r.text and "Private reply" not in r.text
        message_id = r.json()["items"][0]["id"]
        r = await admin.post(f"{API}/messages/{message_id}/read")
        assert r.status_code == 200 and r.json()["body"] is None and r.json()["read_at"] is None
        r = await admin.post(thread_url(world.enrollment.id), json={"body": "Hello"})
        assert r.status_code == 403 and r.json()["code"] == "admin_cannot_message"
        stats = (await admin.get(f"{API}/inbox/stats")).json()
        mine = next(t for t in stats["therapists"] if t["therapist"]["id"] == world.therapist.id)
        assert mine["messages_sent"] == 1 and mine["patient_messages"] == 1
        assert mine["replies"] == 1 and mine["median_reply_hours"] == 5.0
        assert mine["replies_within_promise"] == 1 and mine["waiting_now"] == 0
        assert mine["functions"]["emotion_regulation"] == 1
        page = await admin.get("/admin/messages")
        assert page.status_code == 200 and world.therapist.full_name in page.text
        assert "secret" not in page.text and "Private reply" not in page.text
        assert (
            await admin.get(f"/therapist/patients/{world.enrollment.id}/messages")
        ).status_code == 403
        metadata_reads = await db.scalars(
            select(AuditEvent).where(AuditEvent.resource_type == "message_metadata")
        )
        assert len(list(metadata_reads)) == 2


class TestEscaping:
    async def test_script_and_markup_stay_inert_in_both_roles_pages(
        self, client_factory, db, clock
    ):
        world = await build_world(db, clock.now())
        patient, therapist = client_factory(), client_factory()
        patient_token = await login(patient, world.patient_user.email)
        therapist_token = await login(therapist, world.therapist.email)
        for body in XSS:
            r = await patient.post(
                "/patient/messages",
                data={"csrf_token": patient_token, "body": body},
                follow_redirects=False,
            )
            assert r.status_code == 303
        r = await therapist.post(
            f"/therapist/patients/{world.enrollment.id}/messages",
            data={"csrf_token": therapist_token, "body": "<script>alert(3)</script>\n<b>bold?</b>"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        for html in (
            (await therapist.get(f"/therapist/patients/{world.enrollment.id}/messages")).text,
            (await patient.get("/patient/messages")).text,
            (await therapist.get("/therapist")).text,  # previews in the work list
        ):
            assert "<script>alert" not in html
            assert "<img src=x" not in html and "<b>bold" not in html
            assert "onerror=" not in html or "onerror=&#34;" in html or "onerror=&quot;" in html
        thread = (await therapist.get(f"/therapist/patients/{world.enrollment.id}/messages")).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread
        assert "&lt;img src=x onerror=" in thread
        assert "a &amp; b<br>\nsecond line" in thread
        page = (await patient.get("/patient/messages")).text
        assert "&lt;script&gt;alert(3)&lt;/script&gt;<br>\n&lt;b&gt;bold?&lt;/b&gt;" in page


class TestBadInput:
    async def test_nonsense_is_a_4xx_never_a_500(self, client, db, clock):
        world = await build_world(db, clock.now())
        token = await login(client, world.therapist.email)
        huge = "99999999999999999999"
        thread = thread_url(world.enrollment.id)
        for method, url, kwargs in [
            ("GET", f"{API}/enrollments/{huge}/messages", {}),
            ("POST", f"{API}/messages/{huge}/read", {}),
            ("GET", f"/therapist/patients/{huge}/messages", {}),
            ("GET", thread, {"params": {"before": huge}}),
            ("POST", thread, {"json": {"body": "x", "exercise_response_id": int(huge)}}),
            ("POST", thread, {"json": {"body": "x", "functions": ["flattery"]}}),
            ("POST", thread, {"json": {"body": ["not", "text"]}}),
            (
                "POST",
                thread,
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
            ),
            (
                "POST",
                f"{API}/snippets",
                {"json": {"title": "t", "body": "a\x00b", "function": "alliance"}},
            ),
            ("PATCH", f"{API}/snippets/{huge}", {"json": {}}),
            (
                "POST",
                f"{API}/absences",
                {
                    "json": {
                        "starts_at": "0001-01-01T00:00:00+14:00",
                        "ends_at": "0001-01-02T00:00:00+14:00",
                        "covering_therapist_id": world.other_therapist.id,
                    }
                },
            ),
            (
                "POST",
                f"{API}/absences",
                {
                    "json": {
                        "starts_at": "2026-03-05T00:00:00",
                        "ends_at": "2026-03-06T00:00:00",
                        "covering_therapist_id": world.other_therapist.id,
                    }
                },
            ),
            (
                "POST",
                "/therapist/away",
                {
                    "data": {
                        "csrf_token": token,
                        "first_day": "0001-01-01",
                        "back_on": "9999-12-31",
                        "covering_therapist_id": huge,
                    }
                },
            ),
            (
                "POST",
                f"/therapist/patients/{world.enrollment.id}/messages",
                {"data": {"csrf_token": token, "action": "insert:abc"}},
            ),
        ]:
            r = await client.request(method, url, **kwargs)
            assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text[:200])
        r = await client.get(thread, params={"limit": 0})
        assert r.status_code == 422
        page = await client.get(
            f"/therapist/patients/{world.enrollment.id}/messages",
            params={"before": "x", "snippet": "²", "anchor": "exercise-abc"},
        )
        assert page.status_code == 200
