"""Login, logout, session expiry and throttling over the real API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.accounts.models import UserSession
from app.audit.models import AuditEvent
from tests.factories import PASSWORD, build_world, login


class TestLogin:
    async def test_login_sets_http_only_cookie_and_me_answers(self, client, db, clock):
        world = await build_world(db, clock.now())
        response = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
        )
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "tuki_session=" in cookie
        me = await client.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["email"] == world.admin.email
        assert me.json()["role"] == "admin"

    async def test_email_is_case_insensitive(self, client, db, clock):
        world = await build_world(db, clock.now())
        response = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email.upper(), "password": PASSWORD}
        )
        assert response.status_code == 200

    async def test_wrong_password_and_unknown_user_look_identical(self, client, db, clock):
        world = await build_world(db, clock.now())
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": "nope-nope-nope"}
        )
        unknown = await client.post(
            "/api/v1/auth/login", json={"email": "nobody@example.org", "password": "nope-nope-nope"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers

    async def test_failed_logins_are_audited(self, client, db, clock):
        world = await build_world(db, clock.now())
        await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": "wrong-password-1"}
        )
        outcomes = (
            await db.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "login"))
        ).all()
        assert outcomes == ["failed"]

    async def test_logout_kills_the_server_side_session(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        stolen_cookie = dict(client.cookies)
        assert (await client.post("/api/v1/auth/logout")).status_code == 204
        assert (await client.get("/api/v1/me")).status_code == 401
        client.cookies.update(stolen_cookie)
        assert (await client.get("/api/v1/me")).status_code == 401
        remaining = await db.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == world.admin.id)
        )
        assert remaining == 0

    async def test_login_rotates_an_existing_session(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        first = client.cookies.get("tuki_session")
        await login(client, world.admin.email)
        second = client.cookies.get("tuki_session")
        assert first and second and first != second
        client.cookies.set("tuki_session", first)
        assert (await client.get("/api/v1/me")).status_code == 401


class TestSessionExpiry:
    async def test_idle_timeout(self, client, db, clock, settings):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        clock.advance(timedelta(minutes=settings.session_idle_minutes - 1))
        assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
        assert (await client.get("/api/v1/me")).status_code == 401

    async def test_activity_keeps_session_alive_until_absolute_limit(
        self, client, db, clock, settings
    ):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        elapsed = timedelta()
        step = timedelta(minutes=settings.session_idle_minutes - 5)
        while elapsed + step < timedelta(hours=settings.session_absolute_hours):
            clock.advance(step)
            elapsed += step
            assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(step)
        assert (await client.get("/api/v1/me")).status_code == 401

    async def test_deactivated_user_loses_session(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        world.therapist.is_active = False
        await db.commit()
        assert (await client.get("/api/v1/me")).status_code == 401


class TestThrottling:
    async def test_account_locks_after_repeated_failures(self, client, db, clock, settings):
        world = await build_world(db, clock.now())
        for _ in range(settings.login_max_failures_per_account):
            r = await client.post(
                "/api/v1/auth/login",
                json={"email": world.admin.email, "password": "wrong-password-x"},
            )
            assert r.status_code == 401
        locked = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
        )
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0
        assert "wait" in locked.json()["detail"]
        clock.advance(timedelta(minutes=settings.login_lock_minutes, seconds=1))
        assert (
            await client.post(
                "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
            )
        ).status_code == 200

    async def test_unknown_accounts_lock_the_same_way(self, client, db, clock, settings):
        for _ in range(settings.login_max_failures_per_account):
            await client.post(
                "/api/v1/auth/login",
                json={"email": "ghost@example.org", "password": "wrong-password-x"},
            )
        r = await client.post(
            "/api/v1/auth/login",
            json={"email": "ghost@example.org", "password": "wrong-password-x"},
        )
        assert r.status_code == 429

    async def test_one_address_spraying_many_accounts_is_locked(self, client, db, clock, settings):
        world = await build_world(db, clock.now())
        for i in range(settings.login_max_failures_per_address):
            await client.post(
                "/api/v1/auth/login",
                json={"email": f"user{i}@example.org", "password": "wrong-password-x"},
            )
        r = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
        )
        assert r.status_code == 429

    async def test_success_resets_the_account_counter(self, client, db, clock, settings):
        world = await build_world(db, clock.now())
        for _ in range(settings.login_max_failures_per_account - 1):
            await client.post(
                "/api/v1/auth/login",
                json={"email": world.admin.email, "password": "wrong-password-x"},
            )
        await login(client, world.admin.email)
        for _ in range(settings.login_max_failures_per_account - 1):
            r = await client.post(
                "/api/v1/auth/login",
                json={"email": world.admin.email, "password": "wrong-password-x"},
            )
            assert r.status_code == 401
