"""Clinic admins set the crisis contacts their patients are shown."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.clinics.models import Clinic
from tests.factories import build_world, login
from tests.questionnaires.helpers import phq9


async def test_admin_changes_the_numbers_and_patients_see_them(client_factory, db, clock):
    world = await build_world(db, clock.now())
    admin = client_factory()
    await login(admin, world.admin.email)
    r = await admin.patch(
        "/api/v1/clinic",
        json={
            "emergency_number": "911",
            "crisis_line_name": "Night line",
            "crisis_line_number": "+358 9 123",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["emergency_number"] == "911"
    assert r.json()["crisis_line_number"] == "+358 9 123"
    audit = (
        await db.execute(
            select(AuditEvent.action, AuditEvent.resource_type).where(
                AuditEvent.actor_user_id == world.admin.id, AuditEvent.resource_type == "clinic"
            )
        )
    ).all()
    assert audit == [("update", "clinic")]

    patient = client_factory()
    await login(patient, world.patient_user.email)
    r = await patient.post(
        f"/api/v1/enrollments/{world.enrollment.id}/questionnaires",
        json={"instrument": "phq9", "answers": phq9(q9=1)},
    )
    crisis = r.json()["crisis"]
    assert (crisis["emergency_number"], crisis["crisis_line_name"]) == ("911", "Night line")
    page = await patient.get("/patient/questionnaires/phq9/done")
    assert 'href="tel:911"' in page.text and "Night line" in page.text
    assert 'href="tel:+3589123"' in page.text

    other_clinic = await db.scalar(
        select(Clinic.emergency_number).where(Clinic.id == world.other_clinic.id)
    )
    assert other_clinic == "112"


async def test_partial_update_clear_and_bad_values(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    r = await client.patch("/api/v1/clinic", json={"crisis_line_number": ""})
    assert r.status_code == 200
    assert r.json()["crisis_line_number"] is None and r.json()["emergency_number"] == "112"
    for body in (
        {"emergency_number": ""},
        {"emergency_number": None},
        {"emergency_number": "call me"},
        {"crisis_line_name": ""},
        {"clinic_id": 2},
    ):
        assert (await client.patch("/api/v1/clinic", json=body)).status_code == 422, body
    assert (await client.get("/api/v1/clinic")).json()["emergency_number"] == "112"


async def test_only_admins_may_change_them(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.therapist.email)
    assert (await client.get("/api/v1/clinic")).status_code == 200
    r = await client.patch("/api/v1/clinic", json={"emergency_number": "999"})
    assert r.status_code == 403


async def test_settings_page_keeps_typed_values_on_error(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    page = await client.get("/admin/settings")
    assert page.status_code == 200 and 'value="112"' in page.text
    r = await client.post(
        "/admin/settings",
        data={"emergency_number": "", "crisis_line_name": "Helpline", "crisis_line_number": "abc"},
    )
    assert r.status_code == 422
    assert 'value="Helpline"' in r.text and 'value="abc"' in r.text
    assert 'aria-describedby="e-emergency_number"' in r.text
    assert 'aria-describedby="e-crisis_line_number"' in r.text
    r = await client.post(
        "/admin/settings",
        data={"emergency_number": "112", "crisis_line_name": "Helpline", "crisis_line_number": ""},
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/settings?saved=1"
    clinic = await db.scalar(
        select(Clinic).where(Clinic.id == world.clinic.id).execution_options(populate_existing=True)
    )
    assert (clinic.crisis_line_name, clinic.crisis_line_number) == ("Helpline", None)
