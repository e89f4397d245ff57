"""CSRF: unsafe requests with a session need its token; cross-site requests are refused."""

from __future__ import annotations

from tests.factories import build_world, login

BODY = {"full_name": "Therapist New", "email": "new.therapist@example.org"}


class TestCsrf:
    async def test_missing_token_is_refused(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        del client.headers["X-CSRF-Token"]
        r = await client.post("/api/v1/therapists", json=BODY)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"

    async def test_wrong_token_is_refused(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        client.headers["X-CSRF-Token"] = "not-the-token"
        assert (await client.post("/api/v1/therapists", json=BODY)).status_code == 403

    async def test_right_token_passes(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        assert (await client.post("/api/v1/therapists", json=BODY)).status_code == 201

    async def test_form_field_token_works_for_html_forms(self, client, db, clock):
        world = await build_world(db, clock.now())
        token = await login(client, world.admin.email)
        del client.headers["X-CSRF-Token"]
        refused = await client.post("/admin/therapists", data={**BODY, "csrf_token": "bad"})
        assert refused.status_code == 403
        ok = await client.post("/admin/therapists", data={**BODY, "csrf_token": token})
        assert ok.status_code == 201
        assert "/invite/" in ok.text

    async def test_cross_site_origin_is_refused_even_before_login(self, client, db, clock):
        world = await build_world(db, clock.now())
        r = await client.post(
            "/api/v1/auth/login",
            json={"email": world.admin.email, "password": "x"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and r.json()["code"] == "csrf_origin"
        r = await client.post(
            "/login",
            data={"email": world.admin.email, "password": "x"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert r.status_code == 403

    async def test_same_origin_header_is_accepted(self, client, db, clock):
        world = await build_world(db, clock.now())
        token = await login(client, world.admin.email)
        r = await client.post(
            "/api/v1/therapists",
            json=BODY,
            headers={"Origin": "http://test", "X-CSRF-Token": token},
        )
        assert r.status_code == 201
