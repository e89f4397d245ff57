"""After logging in (again), people land on the page they were on, query string included."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from app.accounts import totp
from tests.factories import PASSWORD, build_world, csrf_from, login


def next_of(location: str) -> str:
    parts = urlsplit(location)
    return parse_qs(parts.query)["next"][0]


async def enrol_admin_in_2fa(client, world, clock) -> str:  # type: ignore[no-untyped-def]
    """Turn on TOTP for the clinic admin; returns the secret."""
    await login(client, world.admin.email)
    setup = await client.post("/api/v1/auth/2fa/setup")
    secret: str = setup.json()["secret"]
    confirmed = await client.post(
        "/api/v1/auth/2fa/confirm", json={"code": totp.code_at(secret, clock.now())}
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret


async def test_an_anonymous_visit_returns_to_the_page_and_its_query(client, db, clock):
    world = await build_world(db, clock.now())
    asked = f"/therapist/patients/{world.enrollment.id}?tab=messages&page=2"
    redirect = await client.get(asked, follow_redirects=False)
    assert redirect.status_code == 303
    assert urlsplit(redirect.headers["location"]).path == "/login"
    assert next_of(redirect.headers["location"]) == asked

    form = await client.get(redirect.headers["location"])
    assert 'name="next" value="' in form.text
    logged_in = await client.post(
        "/login",
        data={"email": world.therapist.email, "password": PASSWORD, "next": asked},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == asked


async def test_a_form_posted_after_expiry_returns_to_the_page_it_came_from(
    client, db, clock, settings
):
    world = await build_world(db, clock.now())
    await login(client, world.patient_user.email)
    clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
    page = "/patient/modules/depression/01-understanding-low-mood?step=3"
    posted = await client.post(
        "/patient/messages",
        data={"body": "Still there?"},
        headers={"Referer": f"http://test{page}"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert next_of(posted.headers["location"]) == page


async def test_a_post_from_another_site_is_refused_not_redirected(client, db, clock, settings):
    world = await build_world(db, clock.now())
    await login(client, world.patient_user.email)
    clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
    posted = await client.post(
        "/patient/messages",
        data={"body": "Still there?"},
        headers={"Referer": "https://evil.example/phish"},
        follow_redirects=False,
    )
    # The cross-site check answers first, so an outside page can never choose where we send people.
    assert posted.status_code == 403
    assert "location" not in posted.headers


async def test_the_second_factor_step_keeps_the_page(client_factory, db, clock):
    world = await build_world(db, clock.now())
    secret = await enrol_admin_in_2fa(client_factory(), world, clock)

    client = client_factory()
    asked = "/admin/reports?program=depression"
    password_step = await client.post(
        "/login",
        data={"email": world.admin.email, "password": PASSWORD, "next": asked},
        follow_redirects=False,
    )
    assert password_step.status_code == 303
    assert urlsplit(password_step.headers["location"]).path == "/login/2fa"
    assert next_of(password_step.headers["location"]) == asked

    form = await client.get(password_step.headers["location"])
    assert f'name="next" value="{asked.replace("&", "&amp;")}"' in form.text
    csrf = csrf_from(form.text)
    clock.advance(timedelta(seconds=30))
    done = await client.post(
        "/login/2fa",
        data={"code": totp.code_at(secret, clock.now()), "next": asked, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == asked


async def test_next_never_leaves_the_site_after_the_second_factor(client_factory, db, clock):
    world = await build_world(db, clock.now())
    secret = await enrol_admin_in_2fa(client_factory(), world, clock)
    client = client_factory()
    step = await client.post(
        "/login",
        data={"email": world.admin.email, "password": PASSWORD, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert step.headers["location"] == "/login/2fa"
    form = await client.get("/login/2fa")
    csrf = csrf_from(form.text)
    clock.advance(timedelta(seconds=30))
    done = await client.post(
        "/login/2fa",
        data={
            "code": totp.code_at(secret, clock.now()),
            "next": "https://evil.example/",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/admin"
