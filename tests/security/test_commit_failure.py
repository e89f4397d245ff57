"""A commit that fails must answer 503 + Retry-After, never a success, and leave nothing behind."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.common.idempotency_models import IdempotencyRecord
from app.inbox.models import Message
from tests.factories import build_world
from tests.security.helpers import client_for


class CommitFails(AsyncSession):
    async def commit(self) -> None:
        await self.rollback()
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))


async def test_failed_commit_is_503_with_nothing_saved(app, database, db, clock, caplog):
    world = await build_world(db, clock.now())
    patient = await client_for(app, db, clock, world.patient_user)
    count = select(func.count()).select_from(Message)
    audit_count = select(func.count()).select_from(AuditEvent)
    keys = select(func.count()).select_from(IdempotencyRecord)
    before = (await db.scalar(count), await db.scalar(audit_count), await db.scalar(keys))
    url = f"/api/v1/enrollments/{world.enrollment.id}/messages"
    body = {"body": "I would like to talk about the weekend."}
    headers = {"Idempotency-Key": "weekend-1"}

    original = database.sessionmaker
    database.sessionmaker = async_sessionmaker(
        class_=CommitFails,
        bind=original.kw["bind"],
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    with caplog.at_level(logging.WARNING):
        response = await patient.post(url, json=body, headers=headers)
    database.sessionmaker = original

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "service_unavailable"
    assert "disk I/O" not in response.text
    assert "disk I/O" not in caplog.text
    assert "OperationalError" in caplog.text
    assert (
        await db.scalar(count),
        await db.scalar(audit_count),
        await db.scalar(keys),
    ) == before

    retry = await patient.post(url, json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    again = await patient.post(url, json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == retry.json()["id"]
    assert await db.scalar(count) == before[0] + 1


async def test_a_programming_error_stays_a_500(app, database, db, clock):
    """Only transient database errors are 503; a broken statement is a bug and says so."""

    class BrokenCommit(AsyncSession):
        async def commit(self) -> None:
            await self.rollback()
            raise ProgrammingError("COMMIT", {}, Exception("syntax error"))

    world = await build_world(db, clock.now())
    patient = await client_for(app, db, clock, world.patient_user)
    original = database.sessionmaker
    database.sessionmaker = async_sessionmaker(
        class_=BrokenCommit,
        bind=original.kw["bind"],
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    try:
        response = await patient.post(
            f"/api/v1/enrollments/{world.enrollment.id}/messages", json={"body": "Hello."}
        )
    finally:
        database.sessionmaker = original
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "server_error"
    assert "Retry-After" not in response.headers
