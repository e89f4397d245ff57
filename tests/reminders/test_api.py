"""JSON API: preferences (validation, who may read and write), reminder lists, rules, report."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.clinics.models import Patient
from app.main import create_app
from app.reminders.models import ReminderPreference
from tests.conftest import make_settings
from tests.factories import build_world, login
from tests.reminders.helpers import deliver, plan

DAY = timedelta(days=1)
VALID = {
    "channels": ["in_app", "email"],
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "quiet_hours_start": "22:00",
    "quiet_hours_end": "07:00",
    "program_weekday": "sun",
    "program_time": "18:00",
}


def _url(world) -> str:
    return f"/api/v1/enrollments/{world.enrollment.id}/reminder-preferences"


class TestPreferences:
    async def test_defaults_then_the_patient_chooses(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get(_url(world))
        assert r.status_code == 200
        body = r.json()
        assert body["is_default"] is True
        assert body["channels"] == ["in_app", "email"]
        assert (body["quiet_hours_start"], body["quiet_hours_end"]) == ("21:00:00", "08:00:00")
        assert body["timezone"] == "Europe/Helsinki" and body["sms_available"] is False

        r = await client.put(_url(world), json=VALID)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["is_default"] is False
        assert body["weekdays"] == ["mon", "tue", "wed", "thu", "fri"]
        assert (body["quiet_hours_start"], body["quiet_hours_end"]) == ("22:00:00", "07:00:00")
        assert (body["program_weekday"], body["program_time"]) == ("sun", "18:00:00")
        pref = await db.get(ReminderPreference, world.enrollment.id)
        assert pref.weekdays == [0, 1, 2, 3, 4] and pref.program_weekday == 6

        audits = (
            (
                await db.execute(
                    select(AuditEvent.action).where(
                        AuditEvent.resource_type == "reminder_preference",
                        AuditEvent.patient_id == world.patient.id,
                    )
                )
            )
            .scalars()
            .all()
        )
        assert sorted(audits) == ["read", "update"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"channels": ["in_app", "fax"]}, "channels.1"),
            ({"phone": "call me maybe"}, "phone"),
            ({"weekdays": []}, "weekdays"),
            ({"weekdays": ["someday"]}, "weekdays.0"),
            ({"quiet_hours_start": "22:00", "quiet_hours_end": None}, ""),
            ({"quiet_hours_start": "22:00", "quiet_hours_end": "22:00"}, ""),
            ({"quiet_hours_start": "25:00"}, "quiet_hours_start"),
            ({"program_weekday": "sun", "program_time": None}, ""),
            ({"paused_until": "2026-04-01T00:00:00"}, "paused_until"),  # no time zone
            ({"surprise": True}, "surprise"),
        ],
    )
    async def test_invalid_choices_are_422(self, client, db, clock, change, field):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.put(_url(world), json={**VALID, **change})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert field in [e["field"] for e in r.json()["detail"]]

    async def test_quiet_hours_may_cross_midnight_or_not(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        for start, end in (("23:30", "06:15"), ("12:00", "13:00")):
            r = await client.put(
                _url(world), json={**VALID, "quiet_hours_start": start, "quiet_hours_end": end}
            )
            assert r.status_code == 200, r.text

    async def test_pause_must_be_in_the_future_and_within_a_year(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        past = (clock.now() - DAY).isoformat()
        far = (clock.now() + 400 * DAY).isoformat()
        for value in (past, far):
            r = await client.put(_url(world), json={**VALID, "paused_until": value})
            assert r.status_code == 422 and r.json()["code"] == "invalid"
        soon = (clock.now() + 7 * DAY).isoformat()
        r = await client.put(_url(world), json={**VALID, "paused_until": soon})
        assert r.status_code == 200
        assert r.json()["paused_until"].startswith("2026-03-09T09:00:00")

    async def test_sms_needs_a_gateway_and_a_phone(self, client, db, clock, database, settings):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.put(_url(world), json={**VALID, "channels": ["in_app", "sms"]})
        assert r.status_code == 422 and "not available" in r.json()["detail"]

        app = create_app(
            make_settings(
                reminder_webhook_url="http://gw.invalid/sms", reminder_webhook_secret="s"
            ),
            database=database,
            clock=clock,
        )
        gw_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )
        await login(gw_client, world.patient_user.email)
        r = await gw_client.put(_url(world), json={**VALID, "channels": ["in_app", "sms"]})
        assert r.status_code == 422 and "phone" in r.json()["detail"]
        r = await gw_client.put(
            _url(world), json={**VALID, "channels": ["in_app", "sms"], "phone": "+358 40 999 8888"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["channels"] == ["in_app", "sms"] and r.json()["sms_available"]
        patient = await db.scalar(
            select(Patient)
            .where(Patient.id == world.patient.id)
            .execution_options(populate_existing=True)
        )
        assert patient.phone == "+358 40 999 8888"

    async def test_who_may_read_and_write(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        for email, get_status, put_status in [
            (world.patient_user.email, 200, 200),
            (world.therapist.email, 200, 403),
            (world.admin.email, 200, 403),
            (world.other_patient_user.email, 404, 404),
            (world.other_therapist.email, 404, 403),
            (world.other_admin.email, 404, 403),
        ]:
            client = client_factory()
            await login(client, email)
            assert (await client.get(_url(world))).status_code == get_status, email
            assert (await client.put(_url(world), json=VALID)).status_code == put_status, email


class TestReminderList:
    async def test_status_list_for_patient_and_staff(
        self, client_factory, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 14 * DAY)
        await deliver(database, settings, clock.now() + 14 * DAY)
        url = f"/api/v1/enrollments/{world.enrollment.id}/reminders"

        patient = client_factory()
        await login(patient, world.patient_user.email)
        mine = (await patient.get(url)).json()
        assert mine and {r["audience"] for r in mine} == {"patient"}
        assert {r["status"] for r in mine} <= {"sent", "pending", "cancelled"}

        therapist = client_factory()
        await login(therapist, world.therapist.email)
        theirs = (await therapist.get(url)).json()
        assert {r["audience"] for r in theirs} == {"patient", "staff"}

        stranger = client_factory()
        await login(stranger, world.other_therapist.email)
        assert (await stranger.get(url)).status_code == 404


class TestNotificationsApi:
    async def test_only_your_own(self, client_factory, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 3 * DAY)
        await deliver(database, settings, clock.now() + 3 * DAY)
        patient = client_factory()
        await login(patient, world.patient_user.email)
        listing = (await patient.get("/api/v1/notifications")).json()
        assert listing["unread"] >= 1
        note_id = listing["items"][0]["id"]
        other = client_factory()
        await login(other, world.other_patient_user.email)
        assert (await other.post(f"/api/v1/notifications/{note_id}/read")).status_code == 404
        assert (await patient.post(f"/api/v1/notifications/{note_id}/read")).status_code == 200


class TestRules:
    RULES = {
        "inactivity_enabled": True,
        "inactivity_days": [2, 5, 10],
        "dropout_alert_enabled": True,
        "max_nudges_per_lapse": 4,
        "new_module_enabled": True,
        "new_module_delay_minutes": 30,
        "questionnaire_enabled": False,
        "questionnaire_after_hours": 12,
        "unread_message_enabled": True,
        "unread_message_hours": 24,
        "program_time_enabled": True,
        "staff_reminders_enabled": True,
        "response_promise_hours": 48,
        "response_warning_hours": 8,
        "feedback_overdue_days": 3,
    }

    async def test_admin_reads_and_sets_the_clinic_rules(
        self, client, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        body = (await client.get("/api/v1/reminder-rules")).json()
        assert body["is_default"] and body["inactivity_days"] == [3, 7, 14]
        r = await client.put("/api/v1/reminder-rules", json=self.RULES)
        assert r.status_code == 200, r.text
        assert r.json()["inactivity_days"] == [2, 5, 10] and not r.json()["is_default"]
        await plan(database, settings, clock.now() + 2 * DAY)
        from tests.reminders.helpers import reminders

        rules = {r.rule for r in await reminders(database, world.enrollment)}
        assert rules == {"inactivity"}  # questionnaire reminders are off in this clinic

    @pytest.mark.parametrize(
        "change",
        [
            {"inactivity_days": [7, 3, 14]},
            {"inactivity_days": [3, 7]},
            {"inactivity_days": [0, 7, 14]},
            {"max_nudges_per_lapse": 0},
            {"response_warning_hours": 48},
            {"new_module_delay_minutes": "soon"},
        ],
    )
    async def test_invalid_rules_are_422(self, client, db, clock, change):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        r = await client.put("/api/v1/reminder-rules", json={**self.RULES, **change})
        assert r.status_code == 422, r.text

    async def test_only_admins(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        assert (await client.get("/api/v1/reminder-rules")).status_code == 403
        assert (await client.put("/api/v1/reminder-rules", json=self.RULES)).status_code == 403


class TestReport:
    async def test_counts_per_status_rule_program_and_activity_within_48_hours(
        self, client, db, database, settings, clock
    ):
        from app.adherence import service as adherence

        world = await build_world(db, clock.now())
        moment = clock.now() + 3 * DAY
        await plan(database, settings, moment)
        await deliver(database, settings, moment)
        # One patient comes back a day later; the other two stay away.
        await adherence.record(
            db,
            enrollment_id=world.enrollment.id,
            kind=adherence.EventKind.LOGIN,
            at=moment + DAY,
        )
        await db.commit()
        await login(client, world.admin.email)
        report = (await client.get("/api/v1/reports/reminders")).json()
        inactivity = next(r for r in report["rules"] if r["rule"] == "inactivity")
        # This clinic has two active enrollments; the other clinic's are not counted.
        assert inactivity["nudges_sent"] == 2
        assert inactivity["sent"] == 4  # in-app and e-mail each
        assert inactivity["followed_by_activity"] == 1
        assert inactivity["followed_rate"] == 0.5
        assert report["by_status"]["sent"] >= 4
        programs = {p["program"]: p for p in report["programs"]}
        assert set(programs) == {"depression", "gad"}
        assert report["follow_up_hours"] == 48
