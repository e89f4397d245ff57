"""The deliverer: claim, send, record; retries with backoff; leases; cancellations; neutral texts."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, time, timedelta
from email import policy

from sqlalchemy import func, select

from app.adherence import service as adherence
from app.adherence.models import AdherenceEvent
from app.audit.models import AuditEvent
from app.clinics.models import Enrollment, EnrollmentStatus
from app.programs.models import ModuleProgress
from app.questionnaires.models import QuestionnaireResponse
from app.reminders.channels import FileOutbox
from app.reminders.models import ReminderRuleConfig
from tests.factories import build_world, create_enrollment, login
from tests.reminders.helpers import (
    Recorder,
    deliver,
    deliverer,
    notifications,
    plan,
    reminders,
    set_preferences,
)

DAY = timedelta(days=1)


async def _events(db, enrollment_id, kind):
    return (
        await db.scalars(
            select(AdherenceEvent).where(
                AdherenceEvent.enrollment_id == enrollment_id, AdherenceEvent.kind == kind
            )
        )
    ).all()


async def _inactivity_planned(db, database, settings, clock):
    """World with the 3-day inactivity nudge planned (in-app and e-mail) at 11:00 local."""
    world = await build_world(db, clock.now())
    # A baseline answer, so the questionnaire rule stays quiet in these scenarios.
    db.add(
        QuestionnaireResponse(
            enrollment_id=world.enrollment.id,
            instrument="phq9",
            occasion="baseline",
            week=0,
            answers={},
            total=3,
            band="minimal",
            completed_at=clock.now() + timedelta(hours=1),
        )
    )
    await db.commit()
    moment = clock.now() + 3 * DAY
    await plan(database, settings, moment)
    return world, moment


class TestSending:
    async def test_in_app_and_email_are_sent_once_and_logged(self, db, database, settings, clock):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        recorder = Recorder()
        report = await deliver(database, settings, moment, email=recorder)
        assert report.sent == report.claimed > 0
        mine = [r for r in await reminders(database, world.enrollment) if r.rule == "inactivity"]
        assert {(r.channel, r.status) for r in mine} == {("in_app", "sent"), ("email", "sent")}
        assert all(r.sent_at == moment and r.attempts == 1 and r.lease_until is None for r in mine)

        notes = await notifications(database, world.patient_user.id)
        assert [(n.text, n.link) for n in notes] == [
            ("Something new is waiting for you in Tuki.", "/patient")
        ]
        to_patient = [m for m in recorder.sent if m.to == world.patient_user.email]
        assert len(to_patient) == 1
        assert "http://test/r/" in to_patient[0].text
        sent_events = await _events(db, world.enrollment.id, "reminder_sent")
        assert len(sent_events) == 2

        again = await deliver(database, settings, moment + DAY, email=recorder)
        assert again.claimed == 0
        assert len([m for m in recorder.sent if m.to == world.patient_user.email]) == 1

    async def test_not_before_it_is_due(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, quiet=(time(22, 0), time(7, 0)))
        last = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
        await adherence.record(
            db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=last
        )
        await db.commit()
        await plan(database, settings, last + 3 * DAY)  # placed at 07:00 local next morning
        due = datetime(2026, 3, 6, 5, 0, tzinfo=UTC)
        report = await deliver(database, settings, due - timedelta(seconds=1))
        assert report.claimed == 0
        report = await deliver(database, settings, due)
        mine = await reminders(database, world.enrollment)
        assert mine and {(r.status, r.sent_at) for r in mine} == {("sent", due)}


class TestCancelAndPostpone:
    async def test_closed_enrollment_cancels_pending_reminders(self, db, database, settings, clock):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        enrollment = await db.get(Enrollment, world.enrollment.id)
        enrollment.status = EnrollmentStatus.CLOSED
        await db.commit()
        recorder = Recorder()
        await deliver(database, settings, moment, email=recorder)
        mine = await reminders(database, world.enrollment)
        assert {r.status for r in mine} == {"cancelled"}
        assert {r.last_error for r in mine} == {"the enrollment is not active"}
        assert all(m.to != world.patient_user.email for m in recorder.sent)
        assert await notifications(database, world.patient_user.id) == []

    async def test_pausing_after_planning_cancels(self, db, database, settings, clock):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        await set_preferences(db, world.enrollment, paused_until=moment + 5 * DAY)
        await deliver(database, settings, moment)
        mine = await reminders(database, world.enrollment)
        assert {(r.status, r.last_error) for r in mine} == {("cancelled", "reminders are paused")}

    async def test_email_switched_off_after_planning_cancels_only_email(
        self, db, database, settings, clock
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        await set_preferences(db, world.enrollment, email=False)
        await deliver(database, settings, moment)
        mine = {r.channel: r.status for r in await reminders(database, world.enrollment)}
        assert mine == {"in_app": "sent", "email": "cancelled"}

    async def test_quiet_hours_chosen_after_planning_postpone_without_using_an_attempt(
        self, db, database, settings, clock
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        await set_preferences(db, world.enrollment, quiet=(time(10, 0), time(14, 0)))
        await deliver(database, settings, moment)  # 11:00 local
        mine = await reminders(database, world.enrollment)
        later = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # 14:00 local
        assert {(r.status, r.due_at, r.attempts) for r in mine} == {("pending", later, 0)}
        await deliver(database, settings, later - timedelta(seconds=1))
        assert {r.status for r in await reminders(database, world.enrollment)} == {"pending"}
        await deliver(database, settings, later)
        mine = await reminders(database, world.enrollment)
        assert {(r.status, r.attempts) for r in mine} == {("sent", 1)}

    async def test_cap_on_nudges_per_lapse(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        db.add(
            ReminderRuleConfig(
                clinic_id=world.clinic.id,
                inactivity_enabled=True,
                inactivity_days_1=3,
                inactivity_days_2=7,
                inactivity_days_3=14,
                dropout_alert_enabled=True,
                max_nudges_per_lapse=1,
                new_module_enabled=True,
                new_module_delay_minutes=60,
                questionnaire_enabled=True,
                questionnaire_after_hours=24,
                unread_message_enabled=True,
                unread_message_hours=24,
                program_time_enabled=True,
                staff_reminders_enabled=True,
                response_promise_hours=48,
                response_warning_hours=8,
                feedback_overdue_days=3,
            )
        )
        await db.commit()
        await plan(database, settings, clock.now() + DAY)  # questionnaire due: nudge 1
        await deliver(database, settings, clock.now() + DAY)
        await plan(database, settings, clock.now() + 3 * DAY)  # inactivity: would be nudge 2
        await deliver(database, settings, clock.now() + 3 * DAY)
        by_rule = {}
        for r in await reminders(database, world.enrollment):
            by_rule.setdefault(r.rule, set()).add(r.status)
        assert by_rule == {"questionnaire_due": {"sent"}, "inactivity": {"cancelled"}}


class TestRetries:
    async def test_failure_then_retry_with_backoff_then_success(
        self, db, database, settings, clock
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        flaky = Recorder(failures=2, failing_to=world.patient_user.email)
        worker = deliverer(database, settings, email=flaky)
        await worker.run(moment)

        async def email_row():
            return next(
                r for r in await reminders(database, world.enrollment) if r.channel == "email"
            )

        row = await email_row()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "test: gateway down")
        assert row.next_attempt_at == moment + timedelta(seconds=60)
        assert (await worker.run(moment + timedelta(seconds=59))).claimed == 0
        await worker.run(moment + timedelta(seconds=60))
        row = await email_row()
        assert (row.status, row.attempts) == ("pending", 2)
        assert row.next_attempt_at == moment + timedelta(seconds=180)  # 60 s, then 120 s
        await worker.run(moment + timedelta(seconds=180))
        row = await email_row()
        assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
        assert len([m for m in flaky.sent if m.to == world.patient_user.email]) == 1

    async def test_gives_up_after_the_limit_and_shows_it_to_admins(
        self, db, database, settings, clock, client
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        broken = Recorder(failures=10_000, failing_to=world.patient_user.email)
        worker = deliverer(database, settings, email=broken)
        at = moment
        for _ in range(settings.reminder_max_attempts):
            await worker.run(at)
            at += timedelta(seconds=settings.reminder_retry_max_seconds)
        row = next(r for r in await reminders(database, world.enrollment) if r.channel == "email")
        assert (row.status, row.attempts) == ("failed", settings.reminder_max_attempts)
        assert (await worker.run(at + DAY)).claimed == 0

        await login(client, world.admin.email)
        report = (await client.get("/api/v1/reports/reminders")).json()
        assert report["by_status"]["failed"] >= 1
        assert row.id in [f["id"] for f in report["failures"]]
        page = await client.get("/admin/reminders")
        assert "test: gateway down" in page.text

    async def test_a_worker_killed_after_claiming_releases_the_row_when_the_lease_ends(
        self, db, database, settings, clock
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        dead = deliverer(database, settings, worker_id="dead-worker")
        tokens = await dead.claim(moment)  # ...and the process dies here, before sending
        assert tokens
        survivor_outbox = Recorder()
        survivor = deliverer(database, settings, email=survivor_outbox, worker_id="survivor")
        assert (await survivor.run(moment + timedelta(seconds=10))).claimed == 0  # still leased
        after_lease = moment + timedelta(seconds=settings.reminder_lease_seconds)
        report = await survivor.run(after_lease)
        assert report.released == len(tokens)
        assert report.sent == len(tokens)
        # The dead worker coming back late cannot send or record anything any more.
        late = await dead.deliver(tokens, after_lease)
        assert late.sent == 0
        mine = await reminders(database, world.enrollment)
        assert {(r.status, r.attempts) for r in mine} == {("sent", 2)}
        assert len([m for m in survivor_outbox.sent if m.to == world.patient_user.email]) == 1
        assert len(await notifications(database, world.patient_user.id)) == 1
        assert len(await _events(db, world.enrollment.id, "reminder_sent")) == 2


class TestNoHealthDetails:
    async def test_canaries_never_leave_the_building(self, db, database, settings, clock, tmp_path):
        world = await build_world(db, clock.now())
        start = clock.now()
        patient_user, patient, enrollment = await create_enrollment(
            db, world.clinic, world.therapist, start, name="Zed Canarypatient"
        )
        patient.phone = "+358 40 765 4321"
        db.add(patient)
        db.add(
            QuestionnaireResponse(
                enrollment_id=enrollment.id,
                instrument="phq9",
                occasion="baseline",
                week=0,
                answers={"q9": 3},
                total=27,
                band="CANARY-BAND-QX severe",
                completed_at=start + timedelta(hours=1),
            )
        )
        db.add(
            ModuleProgress(
                enrollment_id=enrollment.id,
                program="depression",
                module_key="02-activity-and-mood",
                position=2,
                last_page=0,
                unlocked_at=start + timedelta(hours=2),
            )
        )
        await set_preferences(db, enrollment, sms=True, program=(0, time(11, 30)))
        gateway = Recorder()
        outbox = FileOutbox(tmp_path / "outbox", settings.smtp_from)
        configured = settings.model_copy(update={"reminder_webhook_url": "http://gw.invalid/"})
        at = start + timedelta(hours=3)
        for moment in (at, start + 8 * DAY + timedelta(hours=3), start + 14 * DAY):
            await plan(database, configured, moment)
            await deliver(database, configured, moment, email=outbox, sms=gateway)
        rules_sent = {r.rule for r in await reminders(database, enrollment, status="sent")}
        assert {"new_module", "program_time", "inactivity", "questionnaire_due"} <= rules_sent

        texts = []
        for path in (tmp_path / "outbox").glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            texts.append(f"{message['Subject']}\n{message['To']}\n{message.get_content()}")
        texts += [f"{m.to}\n{m.subject}\n{m.text}" for m in gateway.sent]
        texts += [f"{n.text}\n{n.link}" for n in await notifications(database, patient_user.id)]
        texts += [f"{n.text}\n{n.link}" for n in await notifications(database, world.therapist.id)]
        assert len(texts) >= 8
        canaries = [
            "Canarypatient",
            "Zed",
            "CANARY",
            "severe",
            "depression",
            "Depression",
            "low mood",
            "phq",
            "PHQ",
            "activity-and-mood",
            "Activity and mood",
            "questionnaire",
            "module",
        ]
        for text in texts:
            neutral = re.sub(r"/r/[A-Za-z0-9_-]+", "/r/TOKEN", text)
            neutral = re.sub(r"/patient/\w+|/therapist/patients/\d+", "/PATH", neutral)
            for canary in canaries:
                assert canary not in neutral, (canary, neutral)


class TestTrackedLink:
    async def test_opening_records_reminder_opened_once_and_redirects(
        self, db, database, settings, clock, client
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        recorder = Recorder()
        await deliver(database, settings, moment, email=recorder)
        message = next(m for m in recorder.sent if m.to == world.patient_user.email)
        path = re.search(r"http://test(/r/[A-Za-z0-9_-]+)", message.text).group(1)
        clock.advance(3 * DAY + timedelta(hours=1))

        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/patient"
        opened = await _events(db, world.enrollment.id, "reminder_opened")
        assert len(opened) == 1 and opened[0].actor_role == "patient"
        email_row = next(
            r for r in await reminders(database, world.enrollment) if r.channel == "email"
        )
        assert email_row.opened_at == clock.now()
        assert (
            await db.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.resource_type == "reminder", AuditEvent.action == "open")
            )
            == 1
        )

        again = await client.get(path, follow_redirects=False)
        assert again.status_code == 303
        assert len(await _events(db, world.enrollment.id, "reminder_opened")) == 1

    async def test_unknown_token_goes_home_without_error(self, client):
        for token in ("nonsense", "x" * 500):
            r = await client.get(f"/r/{token}", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/"

    async def test_in_app_notification_open_marks_read_and_opened(
        self, db, database, settings, clock, client
    ):
        world, moment = await _inactivity_planned(db, database, settings, clock)
        await deliver(database, settings, moment)
        await login(client, world.patient_user.email)
        listing = (await client.get("/api/v1/notifications")).json()
        assert listing["unread"] == 1
        note = listing["items"][0]
        r = await client.post(f"/api/v1/notifications/{note['id']}/read")
        assert r.status_code == 200 and r.json()["read_at"] is not None
        assert (await client.get("/api/v1/notifications")).json()["unread"] == 0
        assert len(await _events(db, world.enrollment.id, "reminder_opened")) == 1
        in_app = next(
            r for r in await reminders(database, world.enrollment) if r.channel == "in_app"
        )
        assert in_app.opened_at is not None
