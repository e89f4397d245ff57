"""The pages each role lands on, forms that keep what was typed, and protective headers."""

from __future__ import annotations

from tests.factories import PASSWORD, build_world, csrf_from, login


async def _page_login(client, email):
    r = await client.post(
        "/login", data={"email": email, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


class TestLanding:
    async def test_each_role_lands_on_its_own_home(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        for email, home, text in [
            (world.admin.email, "/admin", "Enrollments"),
            (world.therapist.email, "/therapist", world.patient_user.full_name),
            (world.patient_user.email, "/patient", "Need help now?"),
        ]:
            client = client_factory()
            assert await _page_login(client, email) == home
            page = await client.get(home)
            assert page.status_code == 200 and text in page.text, home
            root = await client.get("/", follow_redirects=False)
            assert root.headers["location"] == home

    async def test_anonymous_pages_redirect_to_login_with_next(self, client):
        r = await client.get("/admin", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fadmin"

    async def test_wrong_role_gets_a_403_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.patient_user.email)
        r = await client.get("/admin")
        assert r.status_code == 403 and "Not allowed" in r.text

    async def test_login_form_keeps_email_and_shows_generic_error(self, client, db, clock):
        world = await build_world(db, clock.now())
        r = await client.post(
            "/login", data={"email": world.admin.email, "password": "wrong-password"}
        )
        assert r.status_code == 401
        assert "not correct" in r.text and f'value="{world.admin.email}"' in r.text

    async def test_login_next_parameter_cannot_leave_the_site(self, client, db, clock):
        world = await build_world(db, clock.now())
        r = await client.post(
            "/login",
            data={"email": world.admin.email, "password": PASSWORD, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/admin"

    async def test_therapist_sees_only_own_patients(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.therapist.email)
        page = (await client.get("/therapist")).text
        assert world.patient_user.full_name in page
        assert world.other_patient_user.full_name not in page

    async def test_patient_home_shows_program_therapist_and_crisis_line(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.patient_user.email)
        page = (await client.get("/patient")).text
        assert world.therapist.full_name in page
        assert 'href="tel:112"' in page and "0800 100 100" in page
        assert 'href="tel:0800100100"' in page, "tel: links must be dialable"
        account = (await client.get("/account")).text
        assert 'href="tel:0800100100"' in account, "crisis contacts are on every patient page"


class TestAdminForms:
    async def test_enroll_form_error_keeps_typed_values(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.admin.email)
        form = await client.get("/admin/enroll")
        token = csrf_from(form.text)
        r = await client.post(
            "/admin/enroll",
            data={
                "csrf_token": token,
                "full_name": "Ville Virhe",
                "email": "not-an-email",
                "phone": "",
                "timezone": "Europe/Helsinki",
                "program": "ocd",
                "therapist_id": str(world.therapist.id),
            },
        )
        assert r.status_code == 422
        assert 'value="Ville Virhe"' in r.text and 'value="not-an-email"' in r.text
        assert '<option value="ocd" selected>' in r.text
        assert 'aria-invalid="true" aria-describedby="e-email"' in r.text

    async def test_enroll_form_success_shows_invitation_once(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.admin.email)
        token = csrf_from((await client.get("/admin/enroll")).text)
        r = await client.post(
            "/admin/enroll",
            data={
                "csrf_token": token,
                "full_name": "Ville Valmis",
                "email": "ville@example.org",
                "phone": "",
                "timezone": "Europe/Helsinki",
                "program": "ocd",
                "therapist_id": str(world.therapist.id),
            },
        )
        assert r.status_code == 201 and "http://test/invite/" in r.text
        duplicate = await client.post(
            "/admin/enroll",
            data={
                "csrf_token": token,
                "full_name": "Ville Valmis",
                "email": "ville@example.org",
                "timezone": "Europe/Helsinki",
                "program": "ocd",
                "therapist_id": str(world.therapist.id),
            },
        )
        assert duplicate.status_code == 409 and "already exists" in duplicate.text

    async def test_admin_home_lists_and_filters(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.admin.email)
        page = (await client.get("/admin", params={"program": "gad"})).text
        assert world.other_patient_user.full_name in page
        assert world.patient_user.full_name not in page

    async def test_status_change_from_the_enrollment_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _page_login(client, world.admin.email)
        page = await client.get(f"/admin/enrollments/{world.enrollment.id}")
        token = csrf_from(page.text)
        r = await client.post(
            f"/admin/enrollments/{world.enrollment.id}",
            data={"csrf_token": token, "status": "paused"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Paused" in (await client.get(r.headers["location"])).text


class TestHeaders:
    async def test_security_headers_on_pages_errors_and_api(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        for path in ("/login", "/no-such-page", "/api/v1/me", "/api/v1/nothing-here"):
            r = await client.get(path)
            assert "script-src 'self'" in r.headers["content-security-policy"], path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["cache-control"] == "no-store"
        assert (await client.get("/api/v1/nothing-here")).json()["code"] == "not_found"

    async def test_health_and_readiness(self, client):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
