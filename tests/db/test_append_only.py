"""The audit and adherence logs refuse UPDATE and DELETE at the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.adherence import service as adherence
from app.audit import service as audit
from app.audit.service import SYSTEM
from tests.factories import build_world


@pytest.mark.parametrize("table", ["audit_event", "adherence_event"])
async def test_log_rows_cannot_be_changed_or_deleted(db, clock, table):
    world = await build_world(db, clock.now())
    await audit.record(
        db, SYSTEM, action="read", resource_type="enrollment", patient_id=world.patient.id
    )
    await adherence.record(
        db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=clock.now()
    )
    for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):  # noqa: S608
        savepoint = await db.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            await db.execute(text(statement))
        await savepoint.rollback()
