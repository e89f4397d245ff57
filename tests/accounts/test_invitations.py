"""Invitation links: accept once, expire, get replaced, and refuse weak passwords."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.clinics.models import Enrollment
from tests.factories import build_world, login

NEW_PASSWORD = "a quiet lake in june"


async def _enroll(client, world, email="new.patient@example.org") -> dict:
    await login(client, world.admin.email)
    r = await client.post(
        "/api/v1/enrollments",
        json={
            "full_name": "Noora Newcomer",
            "email": email,
            "program": "panic",
            "therapist_id": world.therapist.id,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


class TestInvitations:
    async def test_accepting_sets_password_activates_and_logs_in(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        created = await _enroll(client_factory(), world)
        assert created["status"] == "invited"
        patient = client_factory()
        r = await patient.post(
            f"/api/v1/invitations/{_token(created['invitation_url'])}/accept",
            json={"password": NEW_PASSWORD},
        )
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "patient"
        me = await patient.get("/api/v1/me")
        assert me.json()["enrollment_id"] == created["id"]
        status = await db.scalar(
            select(Enrollment.status)
            .where(Enrollment.id == created["id"])
            .execution_options(populate_existing=True)
        )
        assert status == "active"
        again = client_factory()
        await login(again, "new.patient@example.org", NEW_PASSWORD)

    async def test_an_invitation_works_only_once(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        token = _token((await _enroll(client_factory(), world))["invitation_url"])
        assert (
            await client_factory().post(
                f"/api/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
            )
        ).status_code == 200
        reuse = await client_factory().post(
            f"/api/v1/invitations/{token}/accept", json={"password": "another good passphrase"}
        )
        assert reuse.status_code == 410 and reuse.json()["code"] == "invitation_used"

    async def test_an_invitation_expires_after_seven_days(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        token = _token((await _enroll(client_factory(), world))["invitation_url"])
        clock.advance(timedelta(days=7, minutes=1))
        r = await client_factory().post(
            f"/api/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
        )
        assert r.status_code == 410 and r.json()["code"] == "invitation_expired"
        page = await client_factory().get(f"/invite/{token}")
        assert page.status_code == 410 and "expired" in page.text

    async def test_resending_replaces_the_old_link(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        admin = client_factory()
        created = await _enroll(admin, world)
        resent = await admin.post(f"/api/v1/enrollments/{created['id']}/invitation")
        assert resent.status_code == 200
        old = await client_factory().post(
            f"/api/v1/invitations/{_token(created['invitation_url'])}/accept",
            json={"password": NEW_PASSWORD},
        )
        assert old.status_code == 410 and old.json()["code"] == "invitation_replaced"
        new = await client_factory().post(
            f"/api/v1/invitations/{_token(resent.json()['invitation_url'])}/accept",
            json={"password": NEW_PASSWORD},
        )
        assert new.status_code == 200
        assert (
            await admin.post(f"/api/v1/enrollments/{created['id']}/invitation")
        ).status_code == 409

    async def test_weak_passwords_are_refused_with_a_reason(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        token = _token((await _enroll(client_factory(), world))["invitation_url"])
        for password, reason in [
            ("short", "at least"),
            ("password123", "too common"),
            ("tuki-demo-2026", "too common"),
            ("noora-newcomer-99", "name"),
        ]:
            r = await client_factory().post(
                f"/api/v1/invitations/{token}/accept", json={"password": password}
            )
            assert r.status_code == 422, password
            assert reason in r.json()["detail"], (password, r.json())
        assert (
            await client_factory().post(
                f"/api/v1/invitations/{token}/accept", json={"password": NEW_PASSWORD}
            )
        ).status_code == 200

    async def test_unknown_token_is_404(self, client):
        r = await client.post(
            "/api/v1/invitations/not-a-real-token/accept", json={"password": NEW_PASSWORD}
        )
        assert r.status_code == 404

    async def test_invitation_page_keeps_errors_beside_fields(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        token = _token((await _enroll(client_factory(), world))["invitation_url"])
        page = client_factory()
        r = await page.post(
            f"/invite/{token}",
            data={"password": NEW_PASSWORD, "password_confirm": "different words here"},
        )
        assert r.status_code == 422 and "not the same" in r.text and 'aria-invalid="true"' in r.text
        r = await page.post(
            f"/invite/{token}",
            data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/patient"
        home = await page.get("/patient")
        assert home.status_code == 200 and "Noora" in home.text
