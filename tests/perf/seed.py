"""Set-based seeding for the scale checks: many rows in a few multi-row INSERTs.

Rows go straight into the tables (one ``INSERT … VALUES`` per table and batch), so a test
can grow a caseload to hundreds of patients in well under a second on either database.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Role, User
from app.adherence.models import AdherenceEvent, EnrollmentRollup
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.common.crypto import FieldCipher
from app.inbox.models import Message
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from tests.factories import password_hash

_serial = itertools.count(1)
EVENT_KINDS = ("login", "module_opened", "exercise_submitted", "module_completed")


async def add_caseload(
    db: AsyncSession,
    clinic: Clinic,
    therapist: User,
    now: datetime,
    count: int,
    *,
    cipher: FieldCipher,
    events_each: int = 4,
) -> list[int]:
    """``count`` active patients for ``therapist``, each with a rollup, events, a message
    from the patient and an open alert; returns the new enrollment ids."""
    batch = next(_serial)
    hashed = await password_hash()
    user_ids = list(
        (
            await db.scalars(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [
                    {
                        "clinic_id": clinic.id,
                        "email": f"perf{batch}-{i}@example.org",
                        "full_name": f"Scale Patient {batch}-{i}",
                        "role": Role.PATIENT.value,
                        "password_hash": hashed,
                        "created_at": now,
                    }
                    for i in range(count)
                ],
            )
        ).all()
    )
    patient_ids = list(
        (
            await db.scalars(
                insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                [{"user_id": uid, "clinic_id": clinic.id, "created_at": now} for uid in user_ids],
            )
        ).all()
    )
    start = now - timedelta(days=21)
    enrollment_ids = list(
        (
            await db.scalars(
                insert(Enrollment).returning(Enrollment.id, sort_by_parameter_order=True),
                [
                    {
                        "clinic_id": clinic.id,
                        "patient_id": pid,
                        "therapist_id": therapist.id,
                        "program": ("depression", "gad", "insomnia")[i % 3],
                        "status": EnrollmentStatus.ACTIVE.value,
                        "created_at": start,
                        "activated_at": start,
                    }
                    for i, pid in enumerate(patient_ids)
                ],
            )
        ).all()
    )
    await db.execute(
        insert(EnrollmentRollup),
        [
            {
                "enrollment_id": eid,
                "event_count": events_each,
                "first_activity_at": start,
                "last_activity_at": now - timedelta(hours=1 + i % 400),
                "last_login_at": now - timedelta(hours=1 + i % 400),
                "login_count": 1,
                "messages_from_patient": 1,
                "last_patient_message_at": now - timedelta(hours=2),
                "awaiting_reply_since": now - timedelta(hours=2),
            }
            for i, eid in enumerate(enrollment_ids)
        ],
    )
    await add_events(db, enrollment_ids, start, events_each)
    body = cipher.encrypt("How do I keep going this week?")
    await db.execute(
        insert(Message),
        [
            {
                "enrollment_id": eid,
                "sender_id": uid,
                "sender_role": Role.PATIENT.value,
                "body_encrypted": body,
                "created_at": now - timedelta(hours=2),
            }
            for eid, uid in zip(enrollment_ids, user_ids, strict=True)
        ],
    )
    await db.execute(
        insert(RiskAlert),
        [
            {
                "enrollment_id": eid,
                "level": "warning",
                "source": "inactivity",
                "reason": "No activity for a while",
                "created_at": now - timedelta(hours=3),
            }
            for eid in enrollment_ids
        ],
    )
    return enrollment_ids


async def add_events(
    db: AsyncSession, enrollment_ids: list[int], start: datetime, each: int
) -> None:
    await db.execute(
        insert(AdherenceEvent),
        [
            {
                "enrollment_id": eid,
                "kind": EVENT_KINDS[n % len(EVENT_KINDS)],
                "at": start + timedelta(hours=n),
                "actor_role": "patient",
                "detail": None,
            }
            for eid in enrollment_ids
            for n in range(each)
        ],
    )


async def add_history(db: AsyncSession, enrollment_id: int, start: datetime, count: int) -> None:
    """``count`` weekly PHQ-9 answers and ``count`` logins on one enrollment."""
    await db.execute(
        insert(QuestionnaireResponse),
        [
            {
                "enrollment_id": enrollment_id,
                "instrument": "phq9",
                "occasion": "extra",
                "week": 0,
                "answers": {f"q{q}": 1 for q in range(1, 10)},
                "total": 9,
                "band": "mild",
                "completed_at": start - timedelta(minutes=n + 1),
            }
            for n in range(count)
        ],
    )
    await add_events(db, [enrollment_id], start - timedelta(days=count), count)
