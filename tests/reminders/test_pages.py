"""Pages: the patient's reminder form (works without JS, keeps what was typed), the admin's
rules and report, the notification bell and list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.reminders.models import ReminderPreference, ReminderRuleConfig
from tests.factories import PASSWORD, build_world
from tests.querycount import count_statements
from tests.reminders.helpers import deliver, notifications, plan, reminders

DAY = timedelta(days=1)


async def _page_login(client, email):
    r = await client.post(
        "/login", data={"email": email, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class TestPatientPage:
    async def test_shows_the_defaults_and_saves_with_a_redirect(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.patient_user.email)
        page = await client.get("/patient/reminders")
        assert page.status_code == 200
        assert 'value="21:00"' in page.text and 'value="08:00"' in page.text
        assert 'name="channels" value="email" checked' in page.text
        r = await client.post(
            "/patient/reminders",
            data={
                "csrf_token": _csrf(page.text),
                "channels": ["email"],
                "weekdays": ["mon", "wed", "fri"],
                "quiet_hours_start": "23:00",
                "quiet_hours_end": "06:30",
                "program_weekday": "wed",
                "program_time": "19:15",
                "paused_until": "2026-03-10",
                "phone": "",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/patient/reminders?saved=1"
        pref = await db.get(ReminderPreference, world.enrollment.id)
        await db.refresh(pref)
        assert pref.weekdays == [0, 2, 4] and pref.email_enabled and not pref.sms_enabled
        assert pref.quiet_start.strftime("%H:%M") == "23:00"
        assert pref.program_weekday == 2 and pref.program_time.strftime("%H:%M") == "19:15"
        # "Until 10 March" in Helsinki: reminders start again at local midnight.
        assert pref.paused_until == datetime(2026, 3, 9, 22, 0, tzinfo=UTC)
        saved = await client.get("/patient/reminders?saved=1")
        assert "saved" in saved.text and 'value="2026-03-10"' in saved.text
        assert "Reminders are paused until" in saved.text

    async def test_mistakes_come_back_as_422_with_what_was_typed(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.patient_user.email)
        page = await client.get("/patient/reminders")
        r = await client.post(
            "/patient/reminders",
            data={
                "csrf_token": _csrf(page.text),
                "channels": ["email", "carrier-pigeon"],
                "weekdays": ["tue"],
                "quiet_hours_start": "22:15",
                "quiet_hours_end": "",
                "program_weekday": "",
                "program_time": "",
                "paused_until": "not a date",
                "phone": "12ab",
            },
        )
        assert r.status_code == 422
        html = r.text
        assert 'value="12ab"' in html and 'value="22:15"' in html and 'value="not a date"' in html
        assert 'value="tue" checked' in html and 'value="mon" checked' not in html
        for name in ("channels", "phone", "quiet_hours_end", "paused_until"):
            assert f'id="e-{name}"' in html, name
        assert 'aria-invalid="true" aria-describedby="e-phone"' in html
        assert await db.get(ReminderPreference, world.enrollment.id) is None

    async def test_other_roles_cannot_use_it(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.therapist.email)
        assert (await client.get("/patient/reminders")).status_code == 403


class TestAdminPage:
    async def test_rules_form_and_counts(self, client, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 3 * DAY)
        await deliver(database, settings, clock.now() + 3 * DAY)
        await _page_login(client, world.admin.email)
        page = await client.get("/admin/reminders")
        assert page.status_code == 200
        assert "Inactivity nudge" in page.text and "Questionnaire due" in page.text
        assert 'name="inactivity_days_1"' in page.text and 'value="3"' in page.text

        data = {
            "csrf_token": _csrf(page.text),
            "inactivity_enabled": "on",
            "inactivity_days_1": "4",
            "inactivity_days_2": "2",
            "inactivity_days_3": "14",
            "dropout_alert_enabled": "on",
            "max_nudges_per_lapse": "5",
            "new_module_enabled": "on",
            "new_module_delay_minutes": "60",
            "questionnaire_after_hours": "24",
            "unread_message_hours": "24",
            "response_promise_hours": "48",
            "response_warning_hours": "8",
            "feedback_overdue_days": "3",
        }
        r = await client.post("/admin/reminders", data=data)
        assert r.status_code == 422
        assert 'id="e-inactivity_days"' in r.text and 'value="4"' in r.text
        assert await db.get(ReminderRuleConfig, world.clinic.id) is None

        data["inactivity_days_2"] = "8"
        r = await client.post("/admin/reminders", data=data, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin/reminders?saved=1"
        config = await db.get(ReminderRuleConfig, world.clinic.id)
        assert (config.inactivity_days_1, config.inactivity_days_2) == (4, 8)
        assert config.questionnaire_enabled is False  # unticked box


class TestBell:
    async def test_unread_count_on_every_page_for_one_query(
        self, client, db, database, settings, clock, engine
    ):
        world = await build_world(db, clock.now())
        await _page_login(client, world.patient_user.email)
        await client.get("/patient")  # the first visit sets up the module path
        with count_statements(engine) as before:
            page = await client.get("/patient")
        assert "Notifications" in page.text and "unread" not in page.text

        await plan(database, settings, clock.now() + 3 * DAY)
        await deliver(database, settings, clock.now() + 3 * DAY)
        unread = len(await notifications(database, world.patient_user.id))
        assert unread >= 1
        with count_statements(engine) as after:
            page = await client.get("/patient")
        assert f'aria-label="Notifications, {unread} unread"' in page.text
        assert f'<span class="badge" aria-hidden="true">{unread}</span>' in page.text
        assert after.count == before.count
        bell = [q for q in after.statements if "FROM notification" in q]
        assert len(bell) == 1 and "count(" in bell[0]

    async def test_no_bell_for_anonymous(self, client):
        page = await client.get("/login")
        assert 'href="/notifications"' not in page.text


class TestNotificationsPage:
    async def test_open_marks_read_and_goes_to_the_page(
        self, client, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 3 * DAY)
        await deliver(database, settings, clock.now() + 3 * DAY)
        await _page_login(client, world.patient_user.email)
        page = await client.get("/notifications")
        assert "Something new is waiting for you in Tuki." in page.text
        first = await notifications(database, world.patient_user.id)
        r = await client.post(
            f"/notifications/{first[0].id}/open",
            data={"csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == first[0].link
        opened = [r for r in await reminders(database, world.enrollment) if r.opened_at]
        assert len(opened) == 1 and opened[0].channel == "in_app"
        r = await client.post(
            "/notifications/read-all", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
        )
        assert r.status_code == 303
        assert all(n.read_at for n in await notifications(database, world.patient_user.id))

    async def test_someone_elses_notification_is_404(self, client, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 3 * DAY)
        await deliver(database, settings, clock.now() + 3 * DAY)
        theirs = await notifications(database, world.patient_user.id)
        await _page_login(client, world.other_patient_user.email)
        page = await client.get("/notifications")
        r = await client.post(
            f"/notifications/{theirs[0].id}/open", data={"csrf_token": _csrf(page.text)}
        )
        assert r.status_code == 404
