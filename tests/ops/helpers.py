"""Arranging data with something in every encrypted column, and fingerprinting whole databases."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import app.models  # noqa: F401
from app.common.crypto import FieldCipher
from app.db import Base, make_engine
from app.inbox.models import Message
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert
from tests.conftest import make_settings
from tests.factories import World, build_world

CANARY = "canary-7f3e-panic-attack-on-the-tram"


@dataclass
class Seeded:
    world: World
    message_id: int
    response_id: int
    alert_id: int


async def seed_encrypted(
    db: AsyncSession, now: datetime, cipher: FieldCipher, *, messages: int = 3
) -> Seeded:
    """A world with messages, an exercise answer, a risk-alert note and a TOTP secret."""
    world = await build_world(db, now)
    first_message = 0
    for n in range(messages):
        message = Message(
            enrollment_id=world.enrollment.id,
            sender_id=world.patient_user.id,
            sender_role="patient",
            body_encrypted=cipher.encrypt(f"{CANARY} message {n}"),
            created_at=now,
        )
        db.add(message)
        await db.flush()
        first_message = first_message or message.id
    response = ExerciseResponse(
        enrollment_id=world.enrollment.id,
        program="depression",
        module_key="01-test",
        exercise_id="thoughts",
        exercise_type="text",
        status="submitted",
        data_encrypted=cipher.encrypt(json.dumps({"answer": CANARY})),
        derived={"words": 5},
        created_at=now,
        updated_at=now,
        submitted_at=now,
    )
    alert = RiskAlert(
        enrollment_id=world.enrollment.id,
        level="urgent",
        source="questionnaire",
        reason="PHQ-9 item 9",
        created_at=now,
        acknowledged_at=now,
        acknowledged_by_id=world.therapist.id,
        action_note_encrypted=cipher.encrypt(f"{CANARY} called the patient"),
    )
    db.add_all([response, alert])
    world.therapist.totp_secret_encrypted = cipher.encrypt("JBSWY3DPEHPK3PXP")
    await db.flush()
    await db.commit()
    return Seeded(world, first_message, response.id, alert.id)


async def seed_database(database_url: str, now: datetime, cipher: FieldCipher) -> Seeded:
    """Seed a database of its own (for drills that must not use the rolled-back fixture)."""
    engine = make_engine(make_settings(database_url=database_url))
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            return await seed_encrypted(session, now, cipher)
    finally:
        await engine.dispose()


async def table_digests(database_url: str) -> dict[str, tuple[int, str]]:
    """Row count and a SHA-256 of every row, in primary-key order, for every table."""
    engine = make_engine(make_settings(database_url=database_url))
    digests: dict[str, tuple[int, str]] = {}
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert names == set(Base.metadata.tables) | {"alembic_version"}
            for table in Base.metadata.sorted_tables:
                rows = (
                    await conn.execute(select(table).order_by(*table.primary_key.columns))
                ).all()
                digest = hashlib.sha256()
                for row in rows:
                    digest.update(repr(tuple(row)).encode())
                digests[table.name] = (len(rows), digest.hexdigest())
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            digests["alembic_version"] = (1, str(version))
    finally:
        await engine.dispose()
    return digests
