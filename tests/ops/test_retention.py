"""Retention: patients past their clinic's period are pseudonymised, everyone else is left alone."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, text

from app.accounts.models import User, UserSession
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.common.crypto import FieldCipher
from app.content.service import get_library
from app.exports.pseudonym import Pseudonymiser
from app.inbox.models import Message
from app.ops import retention
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert
from app.reminders.scheduler import build_scheduler
from tests.factories import create_enrollment, login
from tests.ops.helpers import CANARY, Seeded, seed_encrypted


async def close(db, enrollment: Enrollment, at) -> None:
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.status_changed_at = at
    enrollment.ended_at = at
    await db.commit()


async def snapshot(db, user_id: int, enrollment_id: int) -> tuple[object, ...]:
    """Everything retention may change about one patient, read with plain SQL."""
    user = (
        await db.execute(
            text(
                'SELECT full_name, email, is_active, password_hash FROM "user" WHERE id = :id'
            ).bindparams(id=user_id)
        )
    ).one()
    bodies = (
        await db.scalars(
            text("SELECT body_encrypted FROM message WHERE enrollment_id = :id ORDER BY id")
            .bindparams(id=enrollment_id)
            .columns()
        )
    ).all()
    answers = (
        await db.execute(
            text(
                "SELECT data_encrypted FROM exercise_response WHERE enrollment_id = :id"
            ).bindparams(id=enrollment_id)
        )
    ).all()
    marker = await db.scalar(
        text("SELECT pseudonymised_at FROM enrollment WHERE id = :id").bindparams(id=enrollment_id)
    )
    return tuple(user), tuple(bodies), tuple(answers), marker


async def sweep(database, settings, clock) -> int:
    return await retention.retention_sweep(database, settings=settings, clock=clock)


async def seeded_world(db, clock, settings) -> Seeded:
    seeded = await seed_encrypted(
        db, clock.now(), FieldCipher(settings.encryption_keys.get_secret_value())
    )
    world = seeded.world
    clinic = await db.get(Clinic, world.clinic.id)
    clinic.retention_days = 365
    other = await db.get(Clinic, world.other_clinic.id)
    other.retention_days = 3650
    await close(db, world.enrollment, clock.now())
    await close(db, world.other_clinic_enrollment, clock.now())
    patient = await db.get(Patient, world.patient.id)
    patient.phone = "+358 40 123 4567"
    await db.commit()
    return seeded


async def test_due_patients_are_pseudonymised_once_and_nobody_else_is_touched(
    db, database, settings, clock, client
):
    seeded = await seeded_world(db, clock, settings)
    world = seeded.world
    cipher = FieldCipher(settings.encryption_keys.get_secret_value())
    old_email = world.patient_user.email
    await login(client, old_email)
    assert await db.scalar(
        select(func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == world.patient_user.id)
    )
    due_before = await snapshot(db, world.patient_user.id, world.enrollment.id)
    others = [
        (world.other_patient_user.id, world.other_enrollment.id),
        (
            await db.scalar(
                select(Patient.user_id).where(
                    Patient.id == world.other_clinic_enrollment.patient_id
                )
            ),
            world.other_clinic_enrollment.id,
        ),
    ]
    other_before = [await snapshot(db, *pair) for pair in others]

    # A day before the period is over: nothing happens.
    clock.advance(timedelta(days=364))
    assert await sweep(database, settings, clock) == 0
    assert await snapshot(db, world.patient_user.id, world.enrollment.id) == due_before

    clock.advance(timedelta(days=2))
    assert await sweep(database, settings, clock) == 1
    user_id, patient_id, enrollment_id = (
        world.patient_user.id,
        world.patient.id,
        world.enrollment.id,
    )
    therapist_id = world.therapist.id
    db.expire_all()

    user = await db.get(User, user_id)
    assert user.full_name.startswith("Former patient ")
    assert user.email.endswith("@pseudonymised.invalid")
    assert old_email != user.email
    assert user.is_active is False and user.password_hash is None
    assert (await db.get(Patient, patient_id)).phone is None
    assert (await db.get(Enrollment, enrollment_id)).pseudonymised_at == clock.now()
    assert not await db.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
    )
    me = await client.get("/api/v1/me")
    assert me.status_code == 401
    bodies = await db.scalars(
        select(Message.body_encrypted).where(Message.enrollment_id == enrollment_id)
    )
    assert [cipher.decrypt(b) for b in bodies] == [retention.REMOVED_TEXT] * 3
    answer = await db.scalar(
        select(ExerciseResponse).where(ExerciseResponse.id == seeded.response_id)
    )
    assert json.loads(cipher.decrypt(answer.data_encrypted)) == {} and answer.derived is None
    assert (await db.get(RiskAlert, seeded.alert_id)).action_note_encrypted is None
    # Nothing the patient wrote survives anywhere in the encrypted columns.
    stored = [
        *(await db.scalars(text("SELECT body_encrypted FROM message"))),
        *(await db.scalars(text("SELECT data_encrypted FROM exercise_response"))),
    ]
    assert stored and not [v for v in stored if CANARY in cipher.decrypt(v)]
    # Staff are not touched: the therapist keeps their 2FA secret.
    therapist = await db.get(User, therapist_id)
    assert cipher.decrypt(therapist.totp_secret_encrypted) == "JBSWY3DPEHPK3PXP"
    audits = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "pseudonymise"))).all()
    assert [(a.resource_type, a.resource_id, a.patient_id, a.actor_role) for a in audits] == [
        ("enrollment", str(enrollment_id), patient_id, "system")
    ]

    # The active patient in the same clinic and the other clinic's patient (longer period) stay.
    assert [await snapshot(db, *pair) for pair in others] == other_before

    # Running again changes nothing and audits nothing.
    after = await snapshot(db, user_id, enrollment_id)
    assert await sweep(database, settings, clock) == 0
    assert await snapshot(db, user_id, enrollment_id) == after
    assert (
        await db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "pseudonymise")
        )
        == 1
    )


async def test_a_clinic_without_a_period_keeps_everything(db, database, settings, clock):
    seeded = await seeded_world(db, clock, settings)
    clinic = await db.get(Clinic, seeded.world.clinic.id)
    clinic.retention_days = None
    await db.commit()
    before = await snapshot(db, seeded.world.patient_user.id, seeded.world.enrollment.id)
    clock.advance(timedelta(days=36600))
    assert await sweep(database, settings, clock) == 1, "only the other clinic's patient is due"
    assert await snapshot(db, seeded.world.patient_user.id, seeded.world.enrollment.id) == before


async def test_a_patient_with_an_open_or_recent_enrollment_is_kept(db, database, settings, clock):
    seeded = await seeded_world(db, clock, settings)
    world = seeded.world
    second = Enrollment(
        clinic_id=world.clinic.id,
        patient_id=world.patient.id,
        therapist_id=world.therapist.id,
        program="gad",
        status=EnrollmentStatus.ACTIVE,
        created_at=clock.now(),
        activated_at=clock.now(),
    )
    db.add(second)
    await db.commit()
    before = await snapshot(db, world.patient_user.id, world.enrollment.id)
    clock.advance(timedelta(days=400))
    assert await sweep(database, settings, clock) == 0
    assert await snapshot(db, world.patient_user.id, world.enrollment.id) == before

    # Once the second treatment has also been over for the whole period, both go.
    await close(db, second, clock.now())
    clock.advance(timedelta(days=366))
    assert await sweep(database, settings, clock) == 2
    marked = await db.scalars(
        select(Enrollment.pseudonymised_at).where(Enrollment.patient_id == world.patient.id)
    )
    assert set(marked) == {clock.now()}


async def test_an_ended_enrollment_without_an_end_date_is_never_due(db, database, settings, clock):
    """Legacy rows with no recorded end would otherwise be judged from nothing; keep them."""
    seeded = await seeded_world(db, clock, settings)
    enrollment = await db.get(Enrollment, seeded.world.enrollment.id)
    enrollment.ended_at = None
    enrollment.status_changed_at = None
    await db.commit()
    clock.advance(timedelta(days=3000))
    assert await sweep(database, settings, clock) == 0


async def test_the_worker_runs_retention_daily(database, settings, clock):
    library = get_library(settings.content_dir, settings.content_overlay)
    scheduler = build_scheduler(database, settings=settings, clock=clock, library=library)
    job = scheduler.get_job("retention.run")
    assert job is not None and job.func is retention.retention_sweep
    assert job.trigger.interval == timedelta(days=1)


async def test_many_patients_are_done_in_batches(db, database, settings, clock):
    seeded = await seeded_world(db, clock, settings)
    world = seeded.world
    for _ in range(4):
        _, _, enrollment = await create_enrollment(db, world.clinic, world.therapist, clock.now())
        await close(db, enrollment, clock.now())
    clock.advance(timedelta(days=366))
    report = await retention.run_retention(
        database,
        cipher=FieldCipher(settings.encryption_keys.get_secret_value()),
        pseudonymiser=Pseudonymiser("another-key"),
        now=clock.now(),
        batch_size=2,
    )
    assert (report.patients, report.enrollments, report.clinics) == (5, 5, 2)
    emails = await db.scalars(
        select(User.email)
        .join(Patient, Patient.user_id == User.id)
        .where(Patient.clinic_id == world.clinic.id)
    )
    assert sum(e.endswith("@pseudonymised.invalid") for e in emails) == 5


class _Unreachable:
    """A database whose every session fails, like one that went away."""

    def sessionmaker(self) -> object:
        raise ConnectionError("database is down")


async def test_the_daily_job_logs_and_carries_on_when_the_database_is_down(settings, clock, caplog):
    assert await sweep(_Unreachable(), settings, clock) == 0
    assert "retention.run failed: ConnectionError" in caplog.text
