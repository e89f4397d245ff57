"""Clinic admins set their clinic's retention period over the API, within sane bounds."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.clinics.models import Clinic
from tests.factories import build_world, login

URL = "/api/v1/clinic"


async def test_admin_sets_and_clears_the_retention_period(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    assert (await client.get(URL)).json()["retention_days"] is None

    r = await client.patch(URL, json={"retention_days": 4383})
    assert r.status_code == 200, r.text
    assert r.json()["retention_days"] == 4383
    assert (
        await db.scalar(select(Clinic.retention_days).where(Clinic.id == world.clinic.id)) == 4383
    )
    other = await db.scalar(select(Clinic.retention_days).where(Clinic.id == world.other_clinic.id))
    assert other is None

    # Changing the crisis line alone leaves the period as it is.
    r = await client.patch(URL, json={"crisis_line_name": "Crisis line"})
    assert r.status_code == 200 and r.json()["retention_days"] == 4383

    r = await client.patch(URL, json={"retention_days": None})
    assert r.status_code == 200 and r.json()["retention_days"] is None
    audited = await db.scalars(
        select(AuditEvent.action).where(
            AuditEvent.resource_type == "clinic", AuditEvent.clinic_id == world.clinic.id
        )
    )
    assert list(audited).count("update") == 3


async def test_out_of_range_periods_are_refused(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    for bad in (0, 364, 36501, "3650", 3650.5):
        r = await client.patch(URL, json={"retention_days": bad})
        assert r.status_code == 422, (bad, r.text)
    for edge in (365, 36500):
        assert (await client.patch(URL, json={"retention_days": edge})).status_code == 200


async def test_only_admins_set_the_period(client_factory, db, clock):
    world = await build_world(db, clock.now())
    for email in (world.therapist.email, world.patient_user.email):
        client = client_factory()
        await login(client, email)
        r = await client.patch(URL, json={"retention_days": 400})
        assert r.status_code == 403, r.text
    assert (
        await db.scalar(select(Clinic.retention_days).where(Clinic.id == world.clinic.id)) is None
    )


async def _settings_page_post(client, token: str, retention: str):  # type: ignore[no-untyped-def]
    return await client.post(
        "/admin/settings",
        data={
            "emergency_number": "112",
            "crisis_line_name": "Crisis line",
            "crisis_line_number": "",
            "retention_days": retention,
            "csrf_token": token,
        },
        follow_redirects=False,
    )


async def test_the_settings_page_sets_keeps_and_clears_the_period(client, db, clock):
    world = await build_world(db, clock.now())
    token = await login(client, world.admin.email)
    page = await client.get("/admin/settings")
    assert 'name="retention_days"' in page.text

    saved = await _settings_page_post(client, token, "4383")
    assert saved.status_code == 303, saved.text
    stored = select(Clinic.retention_days).where(Clinic.id == world.clinic.id)
    assert await db.scalar(stored) == 4383
    assert 'value="4383"' in (await client.get("/admin/settings")).text

    for bad in ("12", "forever", "4383.5", "99999"):
        refused = await _settings_page_post(client, token, bad)
        assert refused.status_code == 422, bad
        assert f'value="{bad}"' in refused.text, "the typed value must stay in the form"
        assert "36500" in refused.text
        assert await db.scalar(stored) == 4383

    cleared = await _settings_page_post(client, token, "")
    assert cleared.status_code == 303
    assert await db.scalar(stored) is None
