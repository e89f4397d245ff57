"""Audit: refusals are recorded, audit and adherence rows cannot be changed by the app, and a
patient can see who has opened their record."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from app.adherence import service as adherence
from app.adherence.models import AdherenceEvent
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.db import AppendOnlyError
from tests.factories import build_world, login
from tests.security.helpers import client_for


async def denials(db) -> list[AuditEvent]:
    return list(
        (
            await db.scalars(
                select(AuditEvent).where(AuditEvent.outcome == "denied").order_by(AuditEvent.id)
            )
        ).all()
    )


async def test_refusals_are_audited_once_each(app, db, clock):
    world = await build_world(db, clock.now())
    patient = await client_for(app, db, clock, world.patient_user)
    stranger = await client_for(app, db, clock, world.other_clinic_therapist)
    assert await denials(db) == []

    wrong_role = await patient.get("/api/v1/therapists")
    assert wrong_role.status_code == 403
    foreign = await stranger.get(f"/api/v1/enrollments/{world.enrollment.id}")
    assert foreign.status_code == 404
    forged = await patient.put(
        f"/api/v1/enrollments/{world.enrollment.id}/reminder-preferences",
        json={},
        headers={"X-CSRF-Token": "forged"},
    )
    assert forged.status_code == 403
    rows = await denials(db)
    assert [(r.actor_user_id, r.action, r.resource_type, r.resource_id) for r in rows] == [
        (world.patient_user.id, "read", "route", None),
        (world.other_clinic_therapist.id, "read", "enrollment", str(world.enrollment.id)),
        (world.patient_user.id, "write", "enrollment", str(world.enrollment.id)),
    ]
    assert rows[1].request_path == f"/api/v1/enrollments/{world.enrollment.id}"
    assert all(r.patient_id is None for r in rows)

    ok = await patient.get(f"/api/v1/enrollments/{world.enrollment.id}")
    assert ok.status_code == 200
    assert len(await denials(db)) == 3


async def test_the_app_cannot_update_or_delete_audit_or_adherence_rows(db, clock):
    world = await build_world(db, clock.now())
    await audit_service.record(
        db,
        audit_service.SYSTEM,
        action="read",
        resource_type="enrollment",
        patient_id=world.patient.id,
        at=clock.now(),
    )
    await adherence.record(
        db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=clock.now()
    )
    await db.commit()
    event = await db.scalar(select(AuditEvent).where(AuditEvent.patient_id == world.patient.id))
    adherence_event = await db.scalar(
        select(AdherenceEvent).where(AdherenceEvent.enrollment_id == world.enrollment.id)
    )
    assert event is not None and adherence_event is not None
    for row, change in ((event, "outcome"), (adherence_event, "kind")):
        setattr(row, change, "tampered")
        with pytest.raises(AppendOnlyError):
            await db.flush()
        await db.rollback()
        await db.delete(row)
        with pytest.raises(AppendOnlyError):
            await db.flush()
        await db.rollback()


async def test_patient_sees_who_opened_their_record(client, client_factory, db, clock):
    world = await build_world(db, clock.now())
    therapist = client_factory()
    await login(therapist, world.therapist.email)
    assert (await therapist.get(f"/api/v1/enrollments/{world.enrollment.id}")).status_code == 200
    other_patient = client_factory()
    await login(other_patient, world.other_patient_user.email)
    assert (await other_patient.get("/api/v1/me/access-log")).json() == []

    await login(client, world.patient_user.email)
    assert (await client.get(f"/api/v1/enrollments/{world.enrollment.id}")).status_code == 200
    response = await client.get("/api/v1/me/access-log")
    assert response.status_code == 200
    entries = response.json()
    assert [(e["who"], e["role"], e["action"], e["what"]) for e in entries] == [
        (world.therapist.full_name, "Therapist", "read", "enrollment")
    ]
    assert datetime.fromisoformat(entries[0]["at"]).tzinfo is not None
    assert "ip" not in str(entries).lower()

    page = await client.get("/patient/access-log")
    assert page.status_code == 200
    assert world.therapist.full_name in page.text
    assert world.other_therapist.full_name not in page.text
    assert page.headers["cache-control"] == "no-store"
    reads = (
        await db.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "access_log",
                AuditEvent.patient_id == world.patient.id,
            )
        )
    ).all()
    assert len(reads) == 2
