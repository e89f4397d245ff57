"""Stored XSS: user-written text comes out escaped on every page that shows it."""

from __future__ import annotations

from tests.factories import build_world, create_enrollment, login
from tests.inbox.helpers import create_message
from tests.questionnaires.helpers import create_alert

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def assert_escaped(html: str, label: str) -> None:
    assert SCRIPT not in html, label
    assert "<img src=x onerror" not in html, label
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, label


async def test_user_text_is_escaped_on_staff_pages(app, client_factory, db, clock):
    world = await build_world(db, clock.now())
    _, _, enrollment = await create_enrollment(
        db, world.clinic, world.therapist, clock.now(), name=f"Eve {SCRIPT}{IMG}"
    )
    await db.commit()
    await create_message(
        db, enrollment, world.patient_user, app.state.cipher, body=f"Hello {SCRIPT}{IMG}"
    )
    await create_alert(db, enrollment, reason=f"Note {SCRIPT}{IMG}")
    admin = client_factory()
    await login(admin, world.admin.email)
    therapist = client_factory()
    await login(therapist, world.therapist.email)
    pages = [
        (admin, "/admin"),
        (admin, f"/admin/enrollments/{enrollment.id}"),
        (therapist, "/therapist"),
        (therapist, f"/therapist/patients/{enrollment.id}"),
        (therapist, f"/therapist/patients/{enrollment.id}/messages"),
    ]
    shown = ""
    for client, path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_escaped(response.text, path)
        shown += response.text
    assert "Eve &lt;script&gt;" in shown
    assert "Note &lt;script&gt;" in shown
    thread = (await therapist.get(f"/therapist/patients/{enrollment.id}/messages")).text
    assert "Hello &lt;script&gt;" in thread
