"""The inbox's rows for the reminder planner (the boundary in app/reminders/rules.py)."""

from __future__ import annotations

from datetime import timedelta

from app.inbox import queries
from tests.factories import build_world
from tests.inbox.helpers import create_message, submitted_exercise_row
from tests.reminders.helpers import plan, reminders


async def test_rows_for_unread_unanswered_and_unreviewed(db, clock, app):
    world = await build_world(db, clock.now())
    cipher = app.state.cipher
    now = clock.now()
    unread = await create_message(db, world.enrollment, world.therapist, cipher, at=now)
    await create_message(
        db, world.enrollment, world.therapist, cipher, at=now - timedelta(hours=2), read_at=now
    )
    first = await create_message(
        db, world.other_enrollment, world.other_patient_user, cipher, at=now - timedelta(hours=3)
    )
    await create_message(
        db, world.other_enrollment, world.other_patient_user, cipher, at=now - timedelta(hours=1)
    )
    answered = await submitted_exercise_row(
        db, world.enrollment, cipher, at=now - timedelta(days=2)
    )
    waiting = await submitted_exercise_row(
        db, world.enrollment, cipher, at=now - timedelta(days=1), exercise_id="my-starting-point"
    )
    await create_message(
        db,
        world.enrollment,
        world.therapist,
        cipher,
        at=now - timedelta(days=1),
        exercise_response_id=answered,
        read_at=now,
    )
    await db.commit()

    rows = (await db.execute(queries.unread_staff_messages())).all()
    assert [(r.enrollment_id, r.item_id) for r in rows] == [(world.enrollment.id, unread.id)]
    rows = (await db.execute(queries.unanswered_patient_messages())).all()
    assert [(r.enrollment_id, r.item_id, r.at) for r in rows] == [
        (world.other_enrollment.id, first.id, first.created_at)
    ]
    rows = (await db.execute(queries.submissions_awaiting_feedback())).all()
    assert [(r.enrollment_id, r.item_id) for r in rows] == [(world.enrollment.id, waiting)]


async def test_the_planner_turns_them_into_reminders(db, database, settings, clock, app):
    world = await build_world(db, clock.now())
    at = clock.now() + timedelta(hours=1)
    await create_message(db, world.enrollment, world.patient_user, app.state.cipher, at=at)
    await plan(database, settings, at + timedelta(hours=40))  # 48 h promise - 8 h warning
    due = [r for r in await reminders(database, world.enrollment) if r.rule == "response_due"]
    assert {(r.audience, r.recipient_user_id) for r in due} == {("staff", world.therapist.id)}
