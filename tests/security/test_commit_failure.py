"""A commit that fails must answer with an error, never a success, and leave nothing behind."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.inbox.models import Message
from tests.factories import build_world
from tests.security.helpers import client_for


class CommitFails(AsyncSession):
    async def commit(self) -> None:
        await self.rollback()
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))


async def test_failed_commit_is_an_error_with_nothing_saved(app, database, db, clock, caplog):
    world = await build_world(db, clock.now())
    patient = await client_for(app, db, clock, world.patient_user)
    count = select(func.count()).select_from(Message)
    audit_count = select(func.count()).select_from(AuditEvent)
    before = (await db.scalar(count), await db.scalar(audit_count))

    original = database.sessionmaker
    database.sessionmaker = async_sessionmaker(
        class_=CommitFails,
        bind=original.kw["bind"],
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    with caplog.at_level(logging.ERROR):
        response = await patient.post(
            f"/api/v1/enrollments/{world.enrollment.id}/messages",
            json={"body": "I would like to talk about the weekend."},
        )
    database.sessionmaker = original

    assert response.status_code >= 500, response.text
    assert response.json()["code"] == "server_error"
    assert "disk I/O" not in response.text
    assert (await db.scalar(count), await db.scalar(audit_count)) == before

    retry = await patient.post(
        f"/api/v1/enrollments/{world.enrollment.id}/messages",
        json={"body": "I would like to talk about the weekend."},
    )
    assert retry.status_code == 201, retry.text
    assert await db.scalar(count) == before[0] + 1
