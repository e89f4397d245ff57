"""Data retention: pseudonymise patients whose treatment ended longer ago than their clinic keeps data.

The unit is the patient, not the enrollment: a patient is due only when every one of their
enrollments is closed (completed, dropped or closed) and ended more than the clinic's
``retention_days`` ago, so an open or recent enrollment never loses the name and contact
details it still needs. A clinic whose ``retention_days`` is NULL keeps everything.

What pseudonymisation does, set-based per batch of patients in one short transaction:
name and email become pseudonyms (HMAC of the user id under the export pseudonym key, the
same scheme as research exports), phone, password, 2FA and language are cleared, the
account is deactivated, sessions, notifications, idempotency replays and login-throttle
counters are deleted, unused invitations are revoked and pending reminders cancelled.
Message bodies and exercise answers are overwritten with an encrypted marker, risk-alert
notes are cleared. Questionnaire scores, module progress, adherence events and
timestamps stay, pseudonymised, for outcome statistics.

Audit rows are append-only and are kept unchanged: they hold ids, actions and addresses,
never free text, and the usage log must outlive the record it describes. One audit row
per pseudonymised enrollment records that the job ran (actor "system").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.accounts.models import Invitation, LoginThrottle, User, UserSession
from app.audit import service as audit
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.common.clock import Clock
from app.common.crypto import FieldCipher
from app.common.idempotency_models import IdempotencyRecord
from app.config import Settings
from app.db import Database
from app.exports.pseudonym import Pseudonymiser
from app.inbox.models import Message
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert
from app.reminders.models import Notification, Reminder

log = logging.getLogger("tuki.retention")

BATCH_SIZE = 200
CLOSED_STATUSES = (EnrollmentStatus.COMPLETED, EnrollmentStatus.DROPPED, EnrollmentStatus.CLOSED)
REMOVED_TEXT = "[Removed under the clinic's data retention policy.]"
PSEUDONYM_DOMAIN = "pseudonymised.invalid"


@dataclass
class RetentionReport:
    clinics: int = 0
    patients: int = 0
    enrollments: int = 0

    def line(self) -> str:
        return (
            f"{self.patients} patient(s) and {self.enrollments} enrollment(s) pseudonymised "
            f"in {self.clinics} clinic(s) with a retention period."
        )


def _ended_at() -> ColumnElement[datetime]:
    """When an enrollment ended; NULL (never recorded) means it is never due, to err on keeping."""
    return func.coalesce(Enrollment.ended_at, Enrollment.status_changed_at)


async def due_patients(
    db: AsyncSession, clinic_id: int, cutoff: datetime, *, limit: int
) -> list[int]:
    """Patients of the clinic with something left to pseudonymise and nothing still needed."""
    still_needed = exists().where(
        Enrollment.patient_id == Patient.id,
        or_(
            Enrollment.status.not_in(CLOSED_STATUSES),
            _ended_at().is_(None),
            _ended_at() > cutoff,
        ),
    )
    not_done = exists().where(
        Enrollment.patient_id == Patient.id, Enrollment.pseudonymised_at.is_(None)
    )
    rows = await db.scalars(
        select(Patient.id)
        .where(Patient.clinic_id == clinic_id, not_done, ~still_needed)
        .order_by(Patient.id)
        .limit(limit)
    )
    return list(rows)


async def pseudonymise_patients(
    db: AsyncSession,
    patient_ids: list[int],
    *,
    clinic_id: int,
    cipher: FieldCipher,
    pseudonymiser: Pseudonymiser,
    now: datetime,
) -> tuple[int, int]:
    """Pseudonymise these patients in the caller's transaction; returns (patients, enrollments).

    Enrollments are claimed first with ``pseudonymised_at IS NULL``, so two jobs running
    at once never both audit the same enrollment.
    """
    claimed = (
        await db.execute(
            update(Enrollment)
            .where(Enrollment.patient_id.in_(patient_ids), Enrollment.pseudonymised_at.is_(None))
            .values(pseudonymised_at=now)
            .returning(Enrollment.id, Enrollment.patient_id)
        )
    ).all()
    if not claimed:
        return 0, 0
    patients = sorted({int(row[1]) for row in claimed})
    enrollments = select(Enrollment.id).where(Enrollment.patient_id.in_(patients))
    people = (
        await db.execute(
            select(User.id, User.email)
            .join(Patient, Patient.user_id == User.id)
            .where(Patient.id.in_(patients))
        )
    ).all()
    user_ids = [int(row[0]) for row in people]

    await db.execute(
        update(Message)
        .where(Message.enrollment_id.in_(enrollments))
        .values(body_encrypted=cipher.encrypt(REMOVED_TEXT))
    )
    await db.execute(
        update(ExerciseResponse)
        .where(ExerciseResponse.enrollment_id.in_(enrollments))
        .values(data_encrypted=cipher.encrypt("{}"), derived=None)
    )
    await db.execute(
        update(RiskAlert)
        .where(
            RiskAlert.enrollment_id.in_(enrollments), RiskAlert.action_note_encrypted.is_not(None)
        )
        .values(action_note_encrypted=None)
    )
    await db.execute(
        update(Reminder)
        .where(Reminder.recipient_user_id.in_(user_ids), Reminder.status == "pending")
        .values(status="cancelled")
    )
    await db.execute(
        update(Invitation)
        .where(
            Invitation.user_id.in_(user_ids),
            and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None)),
        )
        .values(revoked_at=now)
    )
    await db.execute(delete(UserSession).where(UserSession.user_id.in_(user_ids)))
    await db.execute(delete(Notification).where(Notification.user_id.in_(user_ids)))
    await db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.user_id.in_(user_ids)))
    await db.execute(
        delete(LoginThrottle).where(LoginThrottle.key.in_([f"account:{row[1]}" for row in people]))
    )
    await db.execute(update(Patient).where(Patient.id.in_(patients)).values(phone=None))
    users: Table = User.__table__  # type: ignore[assignment]
    await db.execute(
        update(users)
        .where(users.c.id == bindparam("user_id"))
        .values(
            full_name=bindparam("new_name"),
            email=bindparam("new_email"),
            password_hash=None,
            is_active=False,
            language=None,
            totp_secret_encrypted=None,
            totp_enabled_at=None,
            totp_last_timecode=None,
        ),
        [
            {
                "user_id": user_id,
                "new_name": f"Former patient {pseudonymiser('patient', user_id)[:8]}",
                "new_email": f"{pseudonymiser('patient', user_id)}@{PSEUDONYM_DOMAIN}",
            }
            for user_id in user_ids
        ],
    )
    by_patient = {int(row[0]): int(row[1]) for row in claimed}
    await audit.record_many(
        db,
        audit.SYSTEM,
        action="pseudonymise",
        resource_type="enrollment",
        targets=list(by_patient.items()),
        clinic_id=clinic_id,
        at=now,
    )
    return len(patients), len(claimed)


async def run_retention(
    database: Database,
    *,
    cipher: FieldCipher,
    pseudonymiser: Pseudonymiser,
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> RetentionReport:
    """Pseudonymise every due patient of every clinic that has a retention period."""
    report = RetentionReport()
    async with database.sessionmaker() as db:
        clinics = (
            await db.execute(
                select(Clinic.id, Clinic.retention_days)
                .where(Clinic.retention_days.is_not(None))
                .order_by(Clinic.id)
            )
        ).all()
    for clinic_id, days in clinics:
        if days is None:
            continue
        report.clinics += 1
        cutoff = now - timedelta(days=int(days))
        while True:
            async with database.sessionmaker() as db:
                due = await due_patients(db, int(clinic_id), cutoff, limit=batch_size)
                if not due:
                    break
                patients, enrollments = await pseudonymise_patients(
                    db,
                    due,
                    clinic_id=int(clinic_id),
                    cipher=cipher,
                    pseudonymiser=pseudonymiser,
                    now=now,
                )
                await db.commit()
            report.patients += patients
            report.enrollments += enrollments
            if enrollments == 0:
                break
    return report


async def retention_report(
    database: Database, *, settings: Settings, clock: Clock
) -> RetentionReport:
    """One run with the keys from the settings (``tuki retention run`` and the daily job)."""
    return await run_retention(
        database,
        cipher=FieldCipher(settings.encryption_keys.get_secret_value()),
        pseudonymiser=Pseudonymiser(settings.export_pseudonym_key.get_secret_value()),
        now=clock.now(),
    )


async def retention_sweep(database: Database, *, settings: Settings, clock: Clock) -> int:
    """Scheduler job: a failure is logged and the next day's run tries again."""
    try:
        report = await retention_report(database, settings=settings, clock=clock)
    except Exception as exc:
        log.error("retention.run failed: %s", type(exc).__name__)
        return 0
    if report.enrollments:
        log.info("retention.run: %s", report.line())
    return report.enrollments
