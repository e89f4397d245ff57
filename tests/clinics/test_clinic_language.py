"""The clinic's language: set by its admins, used for reminders to anyone who chose none and
for pages when the browser asks for none of Tuki's languages."""

from __future__ import annotations

from sqlalchemy import select

from app.clinics.models import Clinic
from app.clinics.schemas import CLINIC_LANGUAGES
from app.web.i18n import SUPPORTED_LOCALES
from tests.factories import build_world, login

URL = "/api/v1/clinic"


def test_the_clinic_languages_are_the_interface_languages():
    assert CLINIC_LANGUAGES == SUPPORTED_LOCALES


async def test_admin_sets_the_language_and_bad_values_change_nothing(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    assert (await client.get(URL)).json()["language"] == "en"

    r = await client.patch(URL, json={"language": "fi"})
    assert r.status_code == 200, r.text
    assert r.json()["language"] == "fi"
    for bad in ("sv", "FI", "", None, 1):
        refused = await client.patch(URL, json={"language": bad})
        assert refused.status_code == 422, (bad, refused.text)
    # Other fields leave it as it is.
    r = await client.patch(URL, json={"crisis_line_name": "Crisis line"})
    assert r.status_code == 200 and r.json()["language"] == "fi"
    assert await db.scalar(select(Clinic.language).where(Clinic.id == world.clinic.id)) == "fi"
    other = await db.scalar(select(Clinic.language).where(Clinic.id == world.other_clinic.id))
    assert other == "en"


async def test_only_admins_set_it(client_factory, db, clock):
    world = await build_world(db, clock.now())
    for email in (world.therapist.email, world.patient_user.email):
        client = client_factory()
        await login(client, email)
        assert (await client.patch(URL, json={"language": "fi"})).status_code == 403
    assert await db.scalar(select(Clinic.language).where(Clinic.id == world.clinic.id)) == "en"


async def test_the_settings_page_sets_it_and_keeps_the_form_on_a_bad_value(client, db, clock):
    world = await build_world(db, clock.now())
    token = await login(client, world.admin.email)
    page = await client.get("/admin/settings")
    assert '<option value="en" lang="en" selected>' in page.text

    form = {
        "emergency_number": "112",
        "crisis_line_name": "Helsinki crisis line",
        "crisis_line_number": "",
        "retention_days": "",
        "csrf_token": token,
    }
    saved = await client.post("/admin/settings", data=form | {"language": "fi"})
    assert saved.status_code == 303, saved.text
    stored = select(Clinic.language).where(Clinic.id == world.clinic.id)
    assert await db.scalar(stored) == "fi"
    assert '<option value="fi" lang="fi" selected>' in (await client.get("/admin/settings")).text

    refused = await client.post("/admin/settings", data=form | {"language": "klingon"})
    assert refused.status_code == 422
    assert 'id="e-language"' in refused.text
    assert 'value="Helsinki crisis line"' in refused.text, "what was typed stays in the form"
    assert await db.scalar(stored) == "fi"


async def test_pages_fall_back_to_the_clinic_language_after_the_browser(client, db, clock):
    world = await build_world(db, clock.now())
    world.clinic.language = "fi"
    world.patient_user.language = None
    await db.commit()
    await login(client, world.patient_user.email)

    # No Accept-Language, or none of ours: the clinic's language.
    for header in ({}, {"Accept-Language": "de-DE"}):
        page = await client.get("/account", headers=header)
        assert '<html lang="fi"' in page.text, header
    # The browser asks for English: the browser wins over the clinic.
    page = await client.get("/account", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en"' in page.text
    # The patient's own choice wins over both.
    world.patient_user.language = "en"
    await db.commit()
    page = await client.get("/account", headers={"Accept-Language": "fi"})
    assert '<html lang="en"' in page.text
