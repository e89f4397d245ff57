"""The work list: alerts, then replies (longest waiting first), feedback, quiet patients.

And its cost: the same number of statements for 5 patients as for 150.
"""

from __future__ import annotations

from datetime import timedelta

from app.clinics.models import EnrollmentStatus
from tests.factories import build_world, create_enrollment, login
from tests.inbox.helpers import (
    create_message,
    set_last_activity,
    submitted_exercise_row,
)
from tests.querycount import count_statements
from tests.questionnaires.helpers import create_alert

API = "/api/v1"


async def test_work_list_order_across_the_four_kinds(client, db, clock, app):
    now = clock.now()
    cipher = app.state.cipher
    world = await build_world(db, now)
    therapist = world.therapist

    async def patient(name: str, **kwargs):
        user, _, enrollment = await create_enrollment(
            db, world.clinic, therapist, now - timedelta(days=30), name=name, **kwargs
        )
        return user, enrollment

    _, alerted = await patient("Alert Person")
    old_user, waiting_long = await patient("Waiting Long")
    new_user, waiting_short = await patient("Waiting Short")
    answered_user, answered = await patient("Answered Person")
    _, exercise = await patient("Exercise Person")
    _, reviewed = await patient("Reviewed Person")
    _, quiet = await patient("Quiet Person")
    _, contacted = await patient("Contacted Person")
    _, paused_quiet = await patient("Paused Person", status=EnrollmentStatus.PAUSED)
    await create_alert(db, alerted, at=now - timedelta(hours=1))
    await create_message(
        db,
        waiting_short,
        new_user,
        cipher,
        body="Quick question",
        at=now - timedelta(hours=1),
        commit=False,
    )
    await create_message(
        db, waiting_long, old_user, cipher, body="First", at=now - timedelta(days=5), commit=False
    )
    await create_message(
        db, waiting_long, old_user, cipher, body="Second", at=now - timedelta(days=4), commit=False
    )
    await create_message(
        db, answered, answered_user, cipher, body="Hi", at=now - timedelta(days=2), commit=False
    )
    await create_message(
        db, answered, therapist, cipher, body="Hello", at=now - timedelta(days=1), commit=False
    )
    response_id = await submitted_exercise_row(db, exercise, cipher, at=now - timedelta(days=2))
    await submitted_exercise_row(db, reviewed, cipher, at=now - timedelta(days=3))
    reviewed_id = await submitted_exercise_row(
        db, reviewed, cipher, at=now - timedelta(days=3), exercise_id="my-starting-point"
    )
    await create_message(
        db,
        reviewed,
        therapist,
        cipher,
        body="Feedback",
        at=now - timedelta(days=2),
        exercise_response_id=reviewed_id,
        commit=False,
    )
    for enrollment in (alerted, waiting_long, waiting_short, answered, exercise, reviewed):
        await set_last_activity(db, enrollment, now - timedelta(hours=3))
    for enrollment in (quiet, contacted, paused_quiet):
        await set_last_activity(db, enrollment, now - timedelta(days=10))
    await create_message(
        db,
        contacted,
        therapist,
        cipher,
        body="How are you?",
        at=now - timedelta(days=2),
        commit=False,
    )
    await db.commit()

    await login(client, therapist.email)
    r = await client.get(f"{API}/inbox")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    order = [(i["kind"], i["patient"]["full_name"]) for i in items]
    names = [name for _, name in order]
    assert order[0] == ("alert", "Alert Person")
    assert order[1:3] == [("reply", "Waiting Long"), ("reply", "Waiting Short")]
    # Oldest submission first; the exercise with feedback after its submission is not listed.
    assert order[3:5] == [("feedback", "Reviewed Person"), ("feedback", "Exercise Person")]
    assert order[-1] == ("quiet", "Quiet Person")
    assert "Answered Person" not in names and "Contacted Person" not in names
    assert "Paused Person" not in names
    assert world.patient_user.full_name not in names  # nothing to do for them
    assert r.json()["counts"] == {"alert": 1, "reply": 2, "feedback": 2, "quiet": 1}

    long, short = items[1], items[2]
    assert long["waiting_messages"] == 2 and long["preview"] == "Second"
    assert long["seconds_left"] < 0, "five days ago is past two working days"
    assert short["seconds_left"] > 0
    feedback = {i["patient"]["full_name"]: i for i in items if i["kind"] == "feedback"}
    assert feedback["Exercise Person"]["exercise_response_id"] == response_id
    assert feedback["Exercise Person"]["exercise_title"] == "My own low-mood circle"
    assert feedback["Reviewed Person"]["exercise_title"] == "My own low-mood circle"
    assert items[-1]["days_quiet"] == 10 and items[-1]["last_contact_at"] is None

    page = (await client.get("/therapist")).text
    positions = [
        page.index(text)
        for text in (
            "Risk alerts",
            "Waiting Long",
            "Waiting Short",
            "Exercise Person",
            "Quiet Person",
            "All patients",
        )
    ]
    assert positions == sorted(positions)
    assert "Overdue by" in page and "answer due" in page
    assert f"/therapist/patients/{exercise.id}/messages?anchor=exercise-{response_id}" in page


async def test_statement_counts_do_not_grow_with_the_caseload(client, db, clock, app, engine):
    now = clock.now()
    cipher = app.state.cipher
    world = await build_world(db, now)
    therapist = world.therapist
    for i in range(12):
        await create_message(
            db,
            world.enrollment,
            world.patient_user if i % 2 else therapist,
            cipher,
            body=f"Message {i}",
            at=now - timedelta(hours=12 - i),
            commit=False,
        )
    await db.commit()
    await login(client, therapist.email)
    counts: dict[str, list[int]] = {"page": [], "api": [], "thread": []}
    made = 1
    for size in (5, 150):
        for i in range(made, size):
            user, _, enrollment = await create_enrollment(
                db, world.clinic, therapist, now - timedelta(days=30), name=f"Load {size}-{i}"
            )
            kind = i % 4
            if kind == 0:
                await create_alert(db, enrollment, at=now - timedelta(hours=1))
            elif kind == 1:
                await create_message(
                    db,
                    enrollment,
                    user,
                    cipher,
                    body="Hello",
                    at=now - timedelta(days=1),
                    commit=False,
                )
            elif kind == 2:
                await submitted_exercise_row(db, enrollment, cipher, at=now - timedelta(days=1))
            if kind == 3:
                await set_last_activity(db, enrollment, now - timedelta(days=20))
            else:
                await set_last_activity(db, enrollment, now - timedelta(hours=2))
        made = size
        await db.commit()
        thread = f"/therapist/patients/{world.enrollment.id}/messages"
        await client.get(thread)  # the first opening sets receipts; measure a steady view
        for name, url in (("page", "/therapist"), ("api", f"{API}/inbox"), ("thread", thread)):
            with count_statements(engine) as log:
                r = await client.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            counts[name].append(log.count)
        listed = (await client.get(f"{API}/inbox")).json()
        assert sum(listed["counts"].values()) >= size // 4 * 3
    assert counts["page"][0] == counts["page"][1], counts
    assert counts["api"][0] == counts["api"][1], counts
    assert counts["thread"][0] == counts["thread"][1], counts
