"""The FHIR bundle validates; the patient's own export holds all their data and nobody else's."""

from __future__ import annotations

import json

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from app.adherence.service import EventKind
from app.audit.models import AuditEvent
from app.programs.models import ExerciseResponse
from tests.adherence.helpers import log, score
from tests.factories import build_world, login

MINE = "MY-OWN-WORDS-1234"
THEIRS = "SOMEONE-ELSES-WORDS-9876"
THERAPIST_REPLY = "THERAPIST-REPLY-5555"


async def _exercise(db, app, enrollment, text: str) -> None:
    db.add(
        ExerciseResponse(
            enrollment_id=enrollment.id,
            program=enrollment.program,
            module_key="01-understanding-low-mood",
            exercise_id="my-circle",
            exercise_type="free_text",
            status="submitted",
            data_encrypted=app.state.cipher.encrypt(json.dumps({"text": text})),
            submitted_at=enrollment.created_at,
        )
    )
    await db.flush()


async def _arrange(app, client_factory, db, clock):
    world = await build_world(db, clock.now())
    await _exercise(db, app, world.enrollment, MINE)
    await _exercise(db, app, world.other_enrollment, THEIRS)
    await score(db, world.enrollment, clock.now(), 16, occasion="baseline", week=0)
    await score(
        db, world.other_enrollment, clock.now(), 3, instrument="gad7", occasion="baseline", week=0
    )
    await log(db, world.enrollment, EventKind.LOGIN, clock.now())
    await db.commit()
    for who, enrollment, text in (
        (world.patient_user, world.enrollment, MINE),
        (world.other_patient_user, world.other_enrollment, THEIRS),
        (world.therapist, world.enrollment, THERAPIST_REPLY),
    ):
        client = client_factory()
        await login(client, who.email)
        r = await client.post(
            f"/api/v1/enrollments/{enrollment.id}/messages",
            json={"body": text, **({"functions": ["alliance"]} if who is world.therapist else {})},
        )
        assert r.status_code == 201, r.text
    return world


async def test_fhir_bundle_validates_and_carries_no_bodies(app, client_factory, db, clock):
    world = await _arrange(app, client_factory, db, clock)
    client = client_factory()
    await login(client, world.therapist.email)
    r = await client.get(f"/api/v1/enrollments/{world.enrollment.id}/fhir")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(r.json())
    kinds = [entry.resource.__resource_type__ for entry in bundle.entry]
    for kind in (
        "Patient",
        "Practitioner",
        "CarePlan",
        "Task",
        "QuestionnaireResponse",
        "Observation",
        "Communication",
    ):
        assert kind in kinds, kind
    assert kinds.count("Communication") == 2 and kinds.count("Task") == 10
    observation = next(
        e.resource for e in bundle.entry if e.resource.__resource_type__ == "Observation"
    )
    assert observation.valueInteger == 16
    assert observation.code.coding[0].code == "44261-6"  # LOINC PHQ-9 total
    text = r.text
    for secret in (MINE, THERAPIST_REPLY, world.patient_user.email, world.patient_user.full_name):
        assert secret not in text
    disclosed = await db.scalar(select(AuditEvent).where(AuditEvent.resource_type == "fhir_bundle"))
    assert disclosed.patient_id == world.patient.id and disclosed.action == "disclose"
    other = await client.get(f"/api/v1/enrollments/{world.other_enrollment.id}/fhir")
    assert other.status_code == 404


async def test_patient_export_has_all_of_mine_and_nothing_of_theirs(app, client_factory, db, clock):
    world = await _arrange(app, client_factory, db, clock)
    # Someone looked at my record: it shows up under who_accessed.
    therapist = client_factory()
    await login(therapist, world.therapist.email)
    assert (await therapist.get(f"/api/v1/enrollments/{world.enrollment.id}")).status_code == 200

    client = client_factory()
    await login(client, world.patient_user.email)
    r = await client.get("/api/v1/me/export")
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    doc = r.json()
    text = r.text
    assert doc["account"]["email"] == world.patient_user.email
    [enrollment] = doc["enrollments"]
    assert enrollment["id"] == world.enrollment.id
    assert enrollment["exercises"][0]["answer"] == {"text": MINE}
    texts = [m["text"] for m in enrollment["messages"]]
    assert texts == [MINE, THERAPIST_REPLY]
    assert enrollment["questionnaires"][0]["total"] == 16
    assert any(e["kind"] == "login" for e in enrollment["activity_log"])
    assert enrollment["activity_summary"]["messages_from_patient"] == 1
    assert any(
        a["who"] == world.therapist.full_name and a["action"] == "read" for a in doc["who_accessed"]
    )
    assert doc["logins"], "the patient's own sessions"
    for foreign in (
        THEIRS,
        world.other_patient_user.email,
        world.other_patient_user.full_name,
        str(world.other_enrollment.id) + ',"program": "gad"',
        "gad7",
    ):
        assert foreign not in text
    assert "password" not in text and "totp_secret" not in text and "token_hash" not in text
    audit_row = await db.scalar(
        select(AuditEvent).where(AuditEvent.resource_type == "patient_data")
    )
    assert audit_row.patient_id == world.patient.id
