"""Pages show times on the reader's own clock: a patient's zone, or the clinic's for staff.

The moment used throughout is 2 March 2026 23:30 UTC: 18:30 the same day in New York,
01:30 the next day in Helsinki and 08:30 the next day in Tokyo, so a page that still
printed UTC (or the wrong zone) shows a different hour and often a different day.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.adherence.models import AdherenceEvent
from app.config import ROOT_DIR
from app.reminders.models import Notification, Reminder
from tests.factories import World, build_world, login
from tests.questionnaires.helpers import create_alert

API = "/api/v1"
MODULE = "01-understanding-low-mood"
LATE = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
UTC_TEXT = "02.03.2026 23:30"
NEW_YORK_TEXT = "02.03.2026 18:30"
HELSINKI_TEXT = "03.03.2026 01:30"
TOKYO_TEXT = "03.03.2026 08:30"


async def _world(db, clock, *, patient_zone: str, clinic_zone: str = "Europe/Helsinki") -> World:
    world = await build_world(db, clock.now())
    world.patient.timezone = patient_zone
    world.clinic.timezone = clinic_zone
    await db.commit()
    return world


async def _module_page_with(client, text: str) -> str:
    """The reader page of the first module that shows ``text`` (exercises sit on later pages)."""
    for page in range(1, 12):
        r = await client.get(f"/patient/modules/depression/{MODULE}?page={page}")
        assert r.status_code == 200, r.text[:300]
        if text in r.text:
            return r.text
    raise AssertionError(f"{text!r} is on no page of {MODULE}")


def _reminder(world: World, key: str, **fields: Any) -> Reminder:
    """An inactivity reminder to the world's patient, due at ``LATE``."""
    return Reminder(
        dedupe_key=key,
        rule="inactivity",
        period="1",
        audience="patient",
        clinic_id=world.clinic.id,
        enrollment_id=world.enrollment.id,
        recipient_user_id=world.patient_user.id,
        due_at=LATE,
        next_attempt_at=LATE,
        **fields,
    )


async def _draft_saved_page(client, world: World) -> str:
    """Log the patient in, save a draft exercise, and return the page that says when."""
    await login(client, world.patient_user.email)
    saved = await client.put(
        f"{API}/enrollments/{world.enrollment.id}/exercises/{MODULE}/my-circle",
        json={"data": {"answers": ["At the bus stop"]}, "version": 0},
    )
    assert saved.status_code == 200, saved.text
    return await _module_page_with(client, "Draft saved")


class TestPatientsSeeTheirOwnZone:
    async def test_reminders_page_shows_due_times_in_the_patients_zone(
        self, client, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="America/New_York")
        db.add(_reminder(world, "local-times:inactivity", channel="in_app", status="sent"))
        await db.commit()
        await login(client, world.patient_user.email)
        page = (await client.get("/patient/reminders")).text
        assert NEW_YORK_TEXT in page
        assert UTC_TEXT not in page and HELSINKI_TEXT not in page

    async def test_a_draft_says_when_it_was_saved_on_the_patients_clock(
        self, client, db, clock
    ) -> None:
        # The frozen clock stands at 09:00 UTC: 04:00 in New York.
        world = await _world(db, clock, patient_zone="America/New_York")
        page = await _draft_saved_page(client, world)
        assert "Draft saved 02.03.2026 04:00." in page
        assert "09:00" not in page

    async def test_a_zone_that_does_not_load_falls_back_to_the_clinics(
        self, client, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="Nowhere/Atlantis", clinic_zone="Asia/Tokyo")
        page = await _draft_saved_page(client, world)
        assert "Draft saved 02.03.2026 18:00." in page

    async def test_notifications_and_access_log_follow_the_patient(
        self, client_factory, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="America/New_York")
        db.add(
            Notification(
                user_id=world.patient_user.id,
                text="Something new",
                link="/patient",
                created_at=LATE,
            )
        )
        await db.commit()
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        assert (
            await therapist.get(f"/therapist/patients/{world.enrollment.id}")
        ).status_code == 200
        patient = client_factory()
        await login(patient, world.patient_user.email)
        bell = (await patient.get("/notifications")).text
        assert NEW_YORK_TEXT in bell and UTC_TEXT not in bell
        # The therapist's read is logged at the real time; it is shown on the patient's clock.
        log = (await patient.get("/patient/access-log")).text
        row = re.search(r'<time datetime="([^"]+)">([^<]*)</time>', log)
        assert row is not None, log
        at = datetime.fromisoformat(row.group(1))
        assert at.utcoffset() == timedelta(0)
        assert row.group(2) == at.astimezone(ZoneInfo("America/New_York")).strftime(
            "%Y-%m-%d %H:%M"
        )


class TestStaffSeeTheClinicsZone:
    async def test_patient_page_and_home_show_alerts_in_clinic_time(
        self, client, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="America/New_York", clinic_zone="Asia/Tokyo")
        await create_alert(db, world.enrollment, at=LATE)
        await login(client, world.therapist.email)
        for url in (f"/therapist/patients/{world.enrollment.id}", "/therapist"):
            page = (await client.get(url)).text
            assert TOKYO_TEXT in page, url
            assert NEW_YORK_TEXT not in page and UTC_TEXT not in page, url
            # Machine-readable times stay in UTC.
            assert 'datetime="2026-03-02T23:30:00+00:00"' in page, url

    async def test_timeline_groups_and_labels_events_in_clinic_time(
        self, client, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="America/New_York", clinic_zone="Asia/Tokyo")
        db.add(
            AdherenceEvent(
                enrollment_id=world.enrollment.id, kind="login", at=LATE, actor_role="patient"
            )
        )
        await db.commit()
        await login(client, world.therapist.email)
        page = (await client.get(f"/therapist/patients/{world.enrollment.id}/timeline")).text
        assert "Times are in Asia/Tokyo time." in page
        event = re.search(r'datetime="2026-03-02T23:30:00\+00:00">([^<]*)</time>', page)
        assert event is not None and event.group(1) == "08:30"
        # The event sits under Tuesday, the Tokyo day, not Monday, the UTC one.
        assert "Tuesday 03.03.2026" in page

    async def test_work_list_and_thread_tag_moments_with_weekday_in_clinic_time(
        self, client, db, clock
    ) -> None:
        world = await _world(db, clock, patient_zone="America/New_York", clinic_zone="Asia/Tokyo")
        await login(client, world.patient_user.email)
        sent = await client.post(
            f"{API}/enrollments/{world.enrollment.id}/messages", json={"body": "Hello there"}
        )
        assert sent.status_code == 201, sent.text
        iso = datetime.fromisoformat(sent.json()["created_at"]).astimezone(UTC).isoformat()
        shown = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Tokyo"))
        expected = f'<time datetime="{iso}">{shown:%a %d.%m.%Y %H:%M}</time>'
        await login(client, world.therapist.email)
        home = (await client.get("/therapist")).text
        thread = (await client.get(f"/therapist/patients/{world.enrollment.id}/messages")).text
        assert expected in home
        assert expected in thread

    async def test_admin_sees_reminder_failures_in_clinic_time(self, client, db, clock) -> None:
        world = await _world(db, clock, patient_zone="America/New_York", clinic_zone="Asia/Tokyo")
        db.add(
            _reminder(
                world,
                "local-times:failed",
                channel="sms",
                status="failed",
                attempts=3,
                last_error="gateway down",
            )
        )
        await db.commit()
        await login(client, world.admin.email)
        page = (await client.get("/admin/reminders")).text
        assert "gateway down" in page
        assert TOKYO_TEXT in page and UTC_TEXT not in page


def test_no_page_template_prints_utc() -> None:
    """Visible times follow the reader's zone; "UTC" in a template means one was missed."""
    found = [
        f"{path.relative_to(ROOT_DIR)}:{number}"
        for path in sorted((ROOT_DIR / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\bUTC\b", line)
    ]
    assert not found, found


@pytest.mark.parametrize("fmt", ["%d.%m.%Y", "%d.%m.%Y %H:%M", "%H:%M", "%Y-%m-%d %H:%M"])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 9, 23, 5, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 59),
        datetime(2027, 1, 1, 8, 0, tzinfo=UTC),
    ],
)
def test_local_spells_out_what_strftime_would(fmt: str, moment: datetime) -> None:
    """The fast paths of ``|local`` and ``|when`` give strftime's text, in the reader's zone."""
    from app.templating import _zone, local, when

    zone = ZoneInfo("Europe/Helsinki")
    token = _zone.set(zone)
    try:
        shown = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(zone)
        assert local(moment, fmt) == shown.strftime(fmt)
        assert when(moment).endswith(" " + shown.strftime("%d.%m.%Y %H:%M"))
    finally:
        _zone.reset(token)
