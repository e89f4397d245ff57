"""Changing a password ends every session of that person and refuses weak or common passwords."""

from __future__ import annotations

from tests.factories import PASSWORD, build_world, login

NEW_PASSWORD = "a-much-longer-river-stone-41"


async def test_a_password_change_ends_every_session(client_factory, db, clock):
    world = await build_world(db, clock.now())
    phone, laptop, bystander = client_factory(), client_factory(), client_factory()
    await login(phone, world.therapist.email)
    await login(laptop, world.therapist.email)
    await login(bystander, world.other_therapist.email)

    changed = await laptop.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text

    for client in (phone, laptop):
        gone = await client.get("/api/v1/me")
        assert gone.status_code == 401, "a session survived the password change"
    assert (await bystander.get("/api/v1/me")).status_code == 200

    old = await client_factory().post(
        "/api/v1/auth/login", json={"email": world.therapist.email, "password": PASSWORD}
    )
    assert old.status_code == 401
    await login(client_factory(), world.therapist.email, NEW_PASSWORD)


async def test_weak_common_or_wrong_inputs_change_nothing(client_factory, db, clock):
    world = await build_world(db, clock.now())
    client = client_factory()
    await login(client, world.patient_user.email)
    attempts = [
        ({"current_password": "not-my-password", "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": "password123"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        (
            {"current_password": PASSWORD, "new_password": world.patient_user.email},
            "new_password",
        ),
    ]
    for body, field in attempts:
        refused = await client.post("/api/v1/auth/password", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["field"] == field, refused.text
    # Nothing changed: the session lives and the old password still opens the account.
    assert (await client.get("/api/v1/me")).status_code == 200
    await login(client_factory(), world.patient_user.email, PASSWORD)


async def test_the_account_page_change_logs_out_everywhere(client_factory, db, clock):
    world = await build_world(db, clock.now())
    other_device = client_factory()
    await login(other_device, world.admin.email)
    page = client_factory()
    token = await login(page, world.admin.email)
    done = await page.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/login")
    assert (await other_device.get("/api/v1/me")).status_code == 401
    assert (await page.get("/api/v1/me")).status_code == 401


async def test_the_account_page_keeps_the_form_on_a_mismatch(client, db, clock):
    world = await build_world(db, clock.now())
    token = await login(client, world.admin.email)
    mismatch = await client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD + "x",
            "csrf_token": token,
        },
    )
    assert mismatch.status_code == 422
    assert 'aria-invalid="true"' in mismatch.text
    assert (await client.get("/api/v1/me")).status_code == 200
