"""Arranging inbox data for tests: messages, snippets and absences written straight to the DB."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.clinics.models import Enrollment
from app.common.crypto import FieldCipher
from app.inbox.models import Absence, Message, Snippet


async def create_message(
    db: AsyncSession,
    enrollment: Enrollment,
    sender: User,
    cipher: FieldCipher,
    *,
    body: str = "Hello there",
    at: datetime | None = None,
    read_at: datetime | None = None,
    exercise_response_id: int | None = None,
    commit: bool = True,
) -> Message:
    """A message from ``sender`` (patient or therapist, by their role) in the thread."""
    message = Message(
        enrollment_id=enrollment.id,
        sender_id=sender.id,
        sender_role=sender.role,
        body_encrypted=cipher.encrypt(body),
        exercise_response_id=exercise_response_id,
        created_at=at or enrollment.created_at,
        read_at=read_at,
    )
    db.add(message)
    if commit:
        await db.commit()
    else:
        await db.flush()
    return message


async def create_snippet(
    db: AsyncSession,
    owner: User,
    *,
    body: str = "Thank you, {first_name}.",
    shared: bool = False,
    function: str = "alliance",
    at: datetime,
) -> Snippet:
    snippet = Snippet(
        clinic_id=owner.clinic_id,
        owner_id=owner.id,
        shared=shared,
        function=function,
        title="A thank-you",
        body=body,
        created_at=at,
        updated_at=at,
    )
    db.add(snippet)
    await db.commit()
    return snippet


async def create_absence(
    db: AsyncSession,
    therapist: User,
    covering: User,
    *,
    starts_at: datetime,
    days: int = 7,
) -> Absence:
    absence = Absence(
        clinic_id=therapist.clinic_id,
        therapist_id=therapist.id,
        covering_therapist_id=covering.id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(days=days),
        created_at=starts_at,
    )
    db.add(absence)
    await db.commit()
    return absence


async def submit_exercise(
    client: object,
    enrollment_id: int,
    *,
    module: str = "01-understanding-low-mood",
    exercise: str = "my-circle",
) -> None:
    """Submit one exercise through the API as the logged-in patient."""
    from tests.programs.helpers import valid_data

    base = f"/api/v1/enrollments/{enrollment_id}"
    detail = await client.get(f"{base}/modules/{module}")  # type: ignore[attr-defined]
    assert detail.status_code == 200, detail.text
    spec = next(e for e in detail.json()["exercises"] if e["id"] == exercise)
    url = f"{base}/exercises/{module}/{exercise}"
    saved = await client.put(url, json={"data": valid_data(spec["fields"]), "version": 0})  # type: ignore[attr-defined]
    assert saved.status_code == 200, saved.text
    version = saved.json()["response"]["version"]
    submitted = await client.post(f"{url}/submit", json={"version": version})  # type: ignore[attr-defined]
    assert submitted.status_code == 200, submitted.text


async def exercise_response_id(
    db: AsyncSession, enrollment_id: int, exercise: str = "my-circle"
) -> int:
    from sqlalchemy import select

    from app.programs.models import ExerciseResponse

    found = await db.scalar(
        select(ExerciseResponse.id).where(
            ExerciseResponse.enrollment_id == enrollment_id,
            ExerciseResponse.exercise_id == exercise,
        )
    )
    assert found is not None
    return found


async def submitted_exercise_row(
    db: AsyncSession,
    enrollment: Enrollment,
    cipher: FieldCipher,
    *,
    at: datetime,
    exercise_id: str = "my-circle",
) -> int:
    """A submitted exercise answer written directly (for work lists at scale)."""
    from app.programs.models import ExerciseResponse

    row = ExerciseResponse(
        enrollment_id=enrollment.id,
        program=enrollment.program,
        module_key="01-understanding-low-mood",
        exercise_id=exercise_id,
        exercise_type="free_text",
        status="submitted",
        data_encrypted=cipher.encrypt('{"answers": ["a", "b", "c", "d"]}'),
        version=2,
        created_at=at,
        updated_at=at,
        submitted_at=at,
    )
    db.add(row)
    await db.flush()
    return row.id


async def set_last_activity(db: AsyncSession, enrollment: Enrollment, at: datetime) -> None:
    from app.adherence.models import EnrollmentRollup

    db.add(
        EnrollmentRollup(
            enrollment_id=enrollment.id,
            event_count=1,
            login_count=1,
            first_activity_at=at,
            last_activity_at=at,
            last_login_at=at,
        )
    )
    await db.flush()
