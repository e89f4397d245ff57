"""Authentication and session hardening (QUALITY.md 2.2-2.3) beyond the basic login tests."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import httpx
from sqlalchemy import func, select

from app.accounts import passwords
from app.accounts.models import UserSession
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, build_world, login


async def test_stored_hash_is_argon2id_with_owasp_parameters(db, clock):
    world = await build_world(db, clock.now())
    match = re.fullmatch(
        r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", world.patient_user.password_hash
    )
    assert match is not None, world.patient_user.password_hash
    memory, time_cost, parallelism = (int(g) for g in match.groups())
    assert (memory >= 19456 and time_cost >= 2) or (memory >= 47104 and time_cost == 1)
    assert parallelism >= 1


class _CountingHasher:
    """Wraps the real hasher and counts every Argon2 verification."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def verify(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real.verify(*args, **kwargs)

    def verify_and_update(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real.verify_and_update(*args, **kwargs)

    def hash(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.hash(*args, **kwargs)


async def test_unknown_user_and_wrong_password_cost_one_hash_each(client, db, clock, monkeypatch):
    world = await build_world(db, clock.now())
    counter = _CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counter)
    answers = []
    for email in (world.therapist.email, "nobody-at-all@example.org", world.admin.email):
        before = counter.calls
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "definitely-wrong-pw"}
        )
        assert counter.calls - before == 1, email
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401
    world.other_admin.is_active = False
    await db.commit()
    before = counter.calls
    deactivated = await client.post(
        "/api/v1/auth/login", json={"email": world.other_admin.email, "password": PASSWORD}
    )
    assert counter.calls - before == 1
    assert (deactivated.status_code, deactivated.json()) == answers[0]


async def test_deactivation_kills_every_session(client_factory, db, clock):
    world = await build_world(db, clock.now())
    clients = [client_factory() for _ in range(3)]
    for c in clients:
        await login(c, world.therapist.email)
    count = select(func.count()).select_from(UserSession)
    assert await db.scalar(count.where(UserSession.user_id == world.therapist.id)) == 3
    world.therapist.is_active = False
    await db.commit()
    for c in clients:
        assert (await c.get("/api/v1/me")).status_code == 401
    assert await db.scalar(count.where(UserSession.user_id == world.therapist.id)) == 0
    relogin = await clients[0].post(
        "/api/v1/auth/login", json={"email": world.therapist.email, "password": PASSWORD}
    )
    assert relogin.status_code == 401


async def test_https_uses_a_host_prefixed_secure_cookie(database, db, clock):
    app = create_app(make_settings(base_url="https://test"), database=database, clock=clock)
    world = await build_world(db, clock.now())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://test"
    ) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": world.admin.email, "password": PASSWORD}
        )
        assert response.status_code == 200
        raw = response.headers["set-cookie"]
        cookie = SimpleCookie()
        cookie.load(raw)
        assert list(cookie) == ["__Host-tuki_session"]
        morsel = cookie["__Host-tuki_session"]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() in ("lax", "strict")
        assert morsel["path"] == "/"
        assert morsel["domain"] == ""
        assert len(morsel.value) >= 22  # >= 128 bits, URL-safe base64
        assert response.headers["strict-transport-security"].startswith("max-age=")
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        assert (await client.get("/api/v1/me")).status_code == 200
        plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://test")
        plain.cookies.set("tuki_session", morsel.value)
        assert (await plain.get("/api/v1/me")).status_code == 401
        await plain.aclose()
