"""TOTP enrolment, the second login step, single use, and the staff requirement."""

from __future__ import annotations

from datetime import timedelta

from app.accounts import totp
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, build_world, login


async def _enrol(client, clock) -> str:
    setup = await client.post("/api/v1/auth/2fa/setup")
    assert setup.status_code == 200
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/Tuki:")
    confirm = await client.post(
        "/api/v1/auth/2fa/confirm", json={"code": totp.code_at(secret, clock.now())}
    )
    assert confirm.status_code == 200, confirm.text
    client.headers["X-CSRF-Token"] = confirm.json()["csrf_token"]
    return secret


class TestTwoFactor:
    async def test_enrolled_staff_must_give_a_code(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        first = client_factory()
        await login(first, world.therapist.email)
        secret = await _enrol(first, clock)

        client = client_factory()
        response = await client.post(
            "/api/v1/auth/login", json={"email": world.therapist.email, "password": PASSWORD}
        )
        assert response.json()["status"] == "mfa_required"
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        blocked = await client.get("/api/v1/enrollments")
        assert blocked.status_code == 401 and blocked.json()["code"] == "mfa_required"

        pending_cookie = client.cookies.get("tuki_session")
        clock.advance(timedelta(seconds=30))
        ok = await client.post("/api/v1/auth/2fa", json={"code": totp.code_at(secret, clock.now())})
        assert ok.status_code == 200
        assert client.cookies.get("tuki_session") != pending_cookie, (
            "session token must rotate after 2FA"
        )
        client.headers["X-CSRF-Token"] = ok.json()["csrf_token"]
        assert (await client.get("/api/v1/enrollments")).status_code == 200

    async def test_a_code_cannot_be_used_twice(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        first = client_factory()
        await login(first, world.admin.email)
        secret = await _enrol(first, clock)
        clock.advance(timedelta(seconds=30))
        code = totp.code_at(secret, clock.now())

        a = client_factory()
        a.headers["X-CSRF-Token"] = (
            await a.post(
                "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
            )
        ).json()["csrf_token"]
        assert (await a.post("/api/v1/auth/2fa", json={"code": code})).status_code == 200

        b = client_factory()
        b.headers["X-CSRF-Token"] = (
            await b.post(
                "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
            )
        ).json()["csrf_token"]
        replay = await b.post("/api/v1/auth/2fa", json={"code": code})
        assert replay.status_code == 401
        assert replay.json()["code"] == "mfa_invalid"

    async def test_wrong_code_is_refused(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        first = client_factory()
        await login(first, world.admin.email)
        await _enrol(first, clock)
        client = client_factory()
        client.headers["X-CSRF-Token"] = (
            await client.post(
                "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
            )
        ).json()["csrf_token"]
        assert (await client.post("/api/v1/auth/2fa", json={"code": "000000"})).status_code == 401
        assert (await client.get("/api/v1/me")).json()["two_factor_enabled"] is True

    async def test_enrolment_needs_a_valid_code(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        await client.post("/api/v1/auth/2fa/setup")
        bad = await client.post("/api/v1/auth/2fa/confirm", json={"code": "123456"})
        assert bad.status_code == 422
        assert (await client.get("/api/v1/me")).json()["two_factor_enabled"] is False

    async def test_required_staff_2fa_blocks_until_enrolled(self, database, db, clock):
        import httpx

        app = create_app(make_settings(require_staff_2fa=True), database=database, clock=clock)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        world = await build_world(db, clock.now())
        r = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
        )
        assert r.json()["status"] == "mfa_setup_required"
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        blocked = await client.get("/api/v1/therapists")
        assert blocked.status_code == 403 and blocked.json()["code"] == "mfa_setup_required"
        await _enrol(client, clock)
        assert (await client.get("/api/v1/therapists")).status_code == 200

        patient = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        r = await patient.post(
            "/api/v1/auth/login", json={"email": world.patient_user.email, "password": PASSWORD}
        )
        assert r.json()["status"] == "ok", "patients are not forced into two-factor"
