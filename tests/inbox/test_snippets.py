"""Snippets: placeholders filled safely, unknown ones refused, own vs shared vs built-in."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.common.errors import Invalid
from app.inbox.models import Message
from app.inbox.snippets import check_placeholders, render, unknown_placeholders
from tests.factories import build_world, login
from tests.inbox.helpers import create_snippet

API = "/api/v1"
VALUES = {"first_name": "Aino", "module_title": "Noticing thoughts", "therapist_name": "Eero"}


def test_known_placeholders_are_filled_in():
    text = "Hi {first_name}, well done on “{module_title}”. - {therapist_name}"
    assert render(text, VALUES) == "Hi Aino, well done on “Noticing thoughts”. - Eero"


@pytest.mark.parametrize(
    "hostile",
    [
        "{__class__}",
        "{0.__globals__}",
        "{first_name.__class__.__mro__}",
        "{first_name[0]}",
        "{__import__('os').system('id')}",
        "{{first_name}}",
        "{!r}",
        "%(first_name)s {}",
    ],
)
def test_hostile_placeholders_never_evaluate(hostile):
    # Nothing is looked up or called: unknown tokens stay exactly as typed.
    expected = "{Aino}" if hostile == "{{first_name}}" else hostile
    assert render(hostile, VALUES) == expected


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again():
    values = {**VALUES, "first_name": "{therapist_name}"}
    assert render("Hi {first_name}", values) == "Hi {therapist_name}"


def test_unknown_placeholders_are_refused_on_save():
    assert unknown_placeholders("Hi {frist_name} and {0.__globals__}") == [
        "{frist_name}",
        "{0.__globals__}",
    ]
    with pytest.raises(Invalid) as caught:
        check_placeholders("Hello {__class__}")
    assert "{__class__}" in caught.value.detail and "{first_name}" in caught.value.detail
    check_placeholders("Plain braces { like this } are fine, and so is {first_name}.")


async def test_api_lists_own_shared_and_builtin_snippets_rendered_for_a_patient(
    client, client_factory, db, clock
):
    world = await build_world(db, clock.now())
    await create_snippet(
        db, world.other_therapist, body="Shared: {first_name}", shared=True, at=clock.now()
    )
    await create_snippet(db, world.other_therapist, body="Private to a colleague", at=clock.now())
    await login(client, world.therapist.email)
    created = await client.post(
        f"{API}/snippets",
        json={
            "title": "Mine",
            "body": "Good to hear from you, {first_name}.",
            "function": "alliance",
        },
    )
    assert created.status_code == 201, created.text
    r = await client.get(f"{API}/snippets", params={"enrollment_id": world.enrollment.id})
    assert r.status_code == 200
    listed = r.json()
    scopes = {s["scope"] for s in listed}
    assert scopes == {"own", "clinic", "default"}
    bodies = [s["body"] for s in listed]
    assert "Private to a colleague" not in bodies
    first = world.patient_user.full_name.split(" ")[0]
    mine = next(s for s in listed if s["scope"] == "own")
    assert mine["rendered"] == f"Good to hear from you, {first}." and mine["editable"]
    defaults = [s for s in listed if s["scope"] == "default"]
    assert {s["function"] for s in defaults} == {"autonomy", "alliance", "emotion_regulation"}
    assert all(not s["editable"] for s in defaults)
    assert all("{" not in s["rendered"] for s in defaults), "every built-in placeholder is known"
    # Another clinic's therapist sees none of this clinic's snippets.
    other = client_factory()
    await login(other, world.other_clinic_therapist.email)
    theirs = (await other.get(f"{API}/snippets")).json()
    assert {s["scope"] for s in theirs} == {"default"}
    # A patient not theirs cannot be used for rendering.
    r = await client.get(f"{API}/snippets", params={"enrollment_id": world.other_enrollment.id})
    assert r.status_code == 404


async def test_api_refuses_unknown_placeholders_and_edits_of_others_snippets(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.therapist.email)
    r = await client.post(
        f"{API}/snippets",
        json={"title": "Bad", "body": "Hi {0.__globals__}", "function": "autonomy"},
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_placeholder"
    builtin = next(
        s for s in (await client.get(f"{API}/snippets")).json() if s["scope"] == "default"
    )
    assert (
        await client.patch(f"{API}/snippets/{builtin['id']}", json={"title": "x"})
    ).status_code == 404
    assert (await client.delete(f"{API}/snippets/{builtin['id']}")).status_code == 404
    theirs = await create_snippet(db, world.other_therapist, shared=True, at=clock.now())
    assert (
        await client.patch(f"{API}/snippets/{theirs.id}", json={"title": "x"})
    ).status_code == 404
    mine = (
        await client.post(
            f"{API}/snippets", json={"title": "T", "body": "Body", "function": "autonomy"}
        )
    ).json()
    r = await client.patch(f"{API}/snippets/{mine['id']}", json={"body": "Now {module_title}"})
    assert r.status_code == 200 and r.json()["body"] == "Now {module_title}"
    r = await client.patch(f"{API}/snippets/{mine['id']}", json={"body": "{module}"})
    assert r.status_code == 422
    assert (await client.delete(f"{API}/snippets/{mine['id']}")).status_code == 204


async def test_inserting_a_snippet_fills_the_composer_and_sends_nothing(client, db, clock):
    world = await build_world(db, clock.now())
    snippet = await create_snippet(
        db, world.therapist, body="Thank you, {first_name}. - {therapist_name}", at=clock.now()
    )
    token = await login(client, world.therapist.email)
    url = f"/therapist/patients/{world.enrollment.id}/messages"
    r = await client.post(
        url,
        data={
            "csrf_token": token,
            "body": "I read your diary.",
            "action": f"insert:{snippet.id}",
            "tag_autonomy": "on",
        },
    )
    assert r.status_code == 200
    first = world.patient_user.full_name.split(" ")[0]
    expected = f"I read your diary.\n\nThank you, {first}. - {world.therapist.full_name}"
    assert f">{expected}</textarea>" in r.text
    assert 'name="tag_alliance" value="on" checked' in r.text  # the snippet's function
    assert 'name="tag_autonomy" value="on" checked' in r.text  # what was ticked stays ticked
    assert "nothing is sent until you press Send" in r.text
    count = await db.scalar(select(func.count()).select_from(Message))
    assert count == 0
    # The same works as a plain link, without JavaScript.
    r = await client.get(url, params={"snippet": snippet.id})
    assert f">Thank you, {first}. - {world.therapist.full_name}</textarea>" in r.text
    # Someone else's private snippet cannot be inserted.
    private = await create_snippet(db, world.other_therapist, at=clock.now())
    r = await client.post(url, data={"csrf_token": token, "action": f"insert:{private.id}"})
    assert r.status_code == 404


async def test_snippet_page_keeps_text_and_shows_the_error(client, db, clock):
    world = await build_world(db, clock.now())
    token = await login(client, world.therapist.email)
    r = await client.post(
        "/therapist/snippets",
        data={
            "csrf_token": token,
            "title": "Oops",
            "body": "Hi {frist_name}",
            "function": "alliance",
        },
    )
    assert r.status_code == 422
    assert ">Hi {frist_name}</textarea>" in r.text
    assert 'aria-describedby="new-e-body new-h-body"' in r.text
    r = await client.post(
        "/therapist/snippets",
        data={
            "csrf_token": token,
            "title": "Fine",
            "body": "Hi {first_name}",
            "function": "alliance",
            "shared": "on",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = (await client.get("/therapist/snippets")).text
    assert "Yours, shared with the clinic" in page and "Built in" in page
