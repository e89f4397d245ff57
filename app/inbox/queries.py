"""The inbox's side of the reminders boundary (see "Inbox boundary" in app/reminders/rules.py).

Each function returns a SELECT of rows ``(enrollment_id, item_id, at)`` that the reminder
planner turns into reminders once their moment has come. They read only inbox tables
(and, for feedback, submitted exercise answers), never a message body.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import aliased

from app.inbox.models import Message
from app.programs.models import ExerciseResponse


def unread_staff_messages() -> Select[int, int, datetime]:
    """Therapist messages the patient has not opened; ``at`` is when each was sent."""
    return select(
        Message.enrollment_id.label("enrollment_id"),
        Message.id.label("item_id"),
        Message.created_at.label("at"),
    ).where(Message.sender_role == "therapist", Message.read_at.is_(None))


def unanswered_patient_messages() -> Select[int, int, datetime]:
    """Per thread, the first patient message since the last therapist message.

    ``item_id`` is that message's id, so each unanswered run is reminded about once.
    """
    last_staff = (
        select(Message.enrollment_id, func.max(Message.created_at).label("at"))
        .where(Message.sender_role == "therapist")
        .group_by(Message.enrollment_id)
        .subquery("last_staff")
    )
    waiting = aliased(Message, name="waiting")
    return (
        select(
            waiting.enrollment_id.label("enrollment_id"),
            func.min(waiting.id).label("item_id"),
            func.min(waiting.created_at).label("at"),
        )
        .outerjoin(last_staff, last_staff.c.enrollment_id == waiting.enrollment_id)
        .where(
            waiting.sender_role == "patient",
            or_(last_staff.c.at.is_(None), waiting.created_at > last_staff.c.at),
        )
        .group_by(waiting.enrollment_id)
    )


def submissions_awaiting_feedback() -> Select[int, int, datetime | None]:
    """Submitted exercises with no therapist message anchored to them since submission."""
    last_feedback = (
        select(Message.exercise_response_id, func.max(Message.created_at).label("at"))
        .where(Message.sender_role == "therapist", Message.exercise_response_id.is_not(None))
        .group_by(Message.exercise_response_id)
        .subquery("last_feedback")
    )
    return (
        select(
            ExerciseResponse.enrollment_id.label("enrollment_id"),
            ExerciseResponse.id.label("item_id"),
            ExerciseResponse.submitted_at.label("at"),
        )
        .outerjoin(last_feedback, last_feedback.c.exercise_response_id == ExerciseResponse.id)
        .where(
            ExerciseResponse.status == "submitted",
            ExerciseResponse.submitted_at.is_not(None),
            or_(
                last_feedback.c.at.is_(None),
                ExerciseResponse.submitted_at > last_feedback.c.at,
            ),
        )
    )
