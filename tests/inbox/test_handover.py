"""Handover: a colleague covers an absence, the patient sees who answers, and it all returns."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.inbox.models import Absence
from tests.factories import build_world, login
from tests.inbox.helpers import create_message
from tests.questionnaires.helpers import create_alert

API = "/api/v1"


async def test_cover_starts_and_ends_with_the_absence(client_factory, db, clock, app):
    world = await build_world(db, clock.now())
    away, cover = world.therapist, world.other_therapist
    await create_message(
        db,
        world.enrollment,
        world.patient_user,
        app.state.cipher,
        body="Is anyone there?",
        at=clock.now() - timedelta(hours=1),
    )
    alert_id = await create_alert(db, world.enrollment)
    thread_page = f"/therapist/patients/{world.enrollment.id}/messages"

    covering = client_factory()
    await login(covering, cover.email)
    assert (await covering.get(thread_page)).status_code == 404
    before = (await covering.get(f"{API}/inbox")).json()["items"]
    assert world.patient_user.full_name not in [i["patient"]["full_name"] for i in before]

    # The absent therapist plans their absence from the page: from today, back in a week.
    absent = client_factory()
    token = await login(absent, away.email)
    today = clock.now().date()
    r = await absent.post(
        "/therapist/away",
        data={
            "csrf_token": token,
            "first_day": today.isoformat(),
            "back_on": (today + timedelta(days=7)).isoformat(),
            "covering_therapist_id": str(cover.id),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert cover.full_name in (await absent.get("/therapist/away")).text

    # Now the colleague sees the patient in their work list and can answer.
    items = (await covering.get(f"{API}/inbox")).json()["items"]
    mine = [i for i in items if i["enrollment_id"] == world.enrollment.id]
    assert [i["kind"] for i in mine] == ["alert", "reply"]
    assert all(i["covering_for"]["id"] == away.id for i in mine)
    page = await covering.get(thread_page)
    assert page.status_code == 200 and "Is anyone there?" in page.text
    assert f"You are covering for {away.full_name}" in page.text
    r = await covering.post(
        f"{API}/enrollments/{world.enrollment.id}/messages",
        json={"body": "I am covering this week."},
    )
    assert r.status_code == 201 and r.json()["sender"]["full_name"] == cover.full_name
    home = (await covering.get("/therapist")).text
    assert f"Covering for {away.full_name}" in home
    assert (await covering.post(f"{API}/alerts/{alert_id}/acknowledge", json={})).status_code == 200

    # The patient sees who is covering.
    patient = client_factory()
    await login(patient, world.patient_user.email)
    page = (await patient.get("/patient/messages")).text
    assert (
        f"{away.full_name} is away until" in page
        and f"<strong>{cover.full_name}</strong> is covering" in page
    )
    assert "I am covering this week." in page
    listed = (await patient.get(f"{API}/enrollments/{world.enrollment.id}/messages")).json()
    assert listed["covering"]["id"] == cover.id

    # A week later the absence is over: everything is back with the therapist.
    clock.advance(timedelta(days=8))
    for client, user in ((covering, cover), (patient, world.patient_user), (absent, away)):
        await login(client, user.email)
    assert (await covering.get(thread_page)).status_code == 404
    assert (
        await covering.post(f"{API}/enrollments/{world.enrollment.id}/messages", json={"body": "x"})
    ).status_code == 404
    items = (await covering.get(f"{API}/inbox")).json()["items"]
    assert world.enrollment.id not in [i["enrollment_id"] for i in items]
    assert "is covering" not in (await patient.get("/patient/messages")).text
    assert (await patient.get(f"{API}/enrollments/{world.enrollment.id}/messages")).json()[
        "covering"
    ] is None
    assert (await absent.get(thread_page)).status_code == 200


async def test_coming_back_early_ends_the_cover(client_factory, db, clock):
    world = await build_world(db, clock.now())
    absent, covering = client_factory(), client_factory()
    await login(absent, world.therapist.email)
    await login(covering, world.other_therapist.email)
    r = await absent.post(
        f"{API}/absences",
        json={
            "starts_at": (clock.now() - timedelta(hours=1)).isoformat(),
            "ends_at": (clock.now() + timedelta(days=3)).isoformat(),
            "covering_therapist_id": world.other_therapist.id,
        },
    )
    assert r.status_code == 201 and r.json()["active"]
    url = f"{API}/enrollments/{world.enrollment.id}/messages"
    assert (await covering.get(url)).status_code == 200
    listed = (await covering.get(f"{API}/absences")).json()
    assert [a["therapist"]["id"] for a in listed] == [world.therapist.id]
    assert (await covering.delete(f"{API}/absences/{r.json()['id']}")).status_code == 404
    assert (await absent.delete(f"{API}/absences/{r.json()['id']}")).status_code == 204
    assert (await covering.get(url)).status_code == 404
    stored = await db.scalar(select(Absence).execution_options(populate_existing=True))
    assert stored.ends_at == clock.now()


async def test_absences_are_checked(client, db, clock):
    world = await build_world(db, clock.now())
    token = await login(client, world.therapist.email)
    start = clock.now() + timedelta(days=1)

    async def plan(covering_id: int, days: int = 5, offset: timedelta = timedelta(0)):
        return await client.post(
            f"{API}/absences",
            json={
                "starts_at": (start + offset).isoformat(),
                "ends_at": (start + offset + timedelta(days=days)).isoformat(),
                "covering_therapist_id": covering_id,
            },
        )

    assert (await plan(world.therapist.id)).status_code == 422  # not yourself
    assert (await plan(world.other_clinic_therapist.id)).status_code == 422  # same clinic only
    assert (await plan(world.admin.id)).status_code == 422  # a therapist
    assert (await plan(world.other_therapist.id, days=0)).status_code == 422
    assert (await plan(world.other_therapist.id, days=400)).status_code == 422
    assert (await plan(world.other_therapist.id)).status_code == 201
    clash = await plan(world.other_therapist.id, offset=timedelta(days=2))
    assert clash.status_code == 409 and clash.json()["code"] == "absence_overlaps"
    r = await client.post(
        "/therapist/away",
        data={
            "csrf_token": token,
            "first_day": "2026-13-40",
            "back_on": "",
            "covering_therapist_id": "",
        },
    )
    assert r.status_code == 422
    assert 'aria-describedby="e-first_day h-first_day"' in r.text
    assert "Choose the colleague who covers for you." in r.text
