"""Idempotent demo data: one clinic, an admin, three therapists, a patient in every program."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.accounts import passwords
from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.adherence import service as adherence
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.common.clock import utc_now
from app.common.crypto import FieldCipher
from app.config import Settings
from app.content.service import get_library
from app.db import Database, make_engine
from app.demo_history import add_history
from app.programs.catalogue import PROGRAMS

# Exists only in demo data; the password policy refuses it everywhere else.
DEMO_PASSWORD = "tuki-demo-2026"  # noqa: S105
DEMO_CLINIC_SLUG = "demo"
DEMO_DOMAIN = "demo.tuki.test"

THERAPISTS = ["Aino Virtanen", "Mikael Korhonen", "Sara Lindqvist"]
PATIENTS = {
    "depression": ("Liisa Mäkinen", 35),
    "gad": ("Jonas Nieminen", 28),
    "ocd": ("Emma Heikkinen", 42),
    "bipolar": ("Oskari Laine", 56),
    "social-anxiety": ("Noora Koskinen", 21),
    "bulimia": ("Helmi Järvinen", 49),
    "alcohol": ("Pekka Salonen", 14),
    "panic": ("Veera Lehtonen", 63),
    "insomnia": ("Matti Hämäläinen", 7),
}


def demo_logins() -> list[tuple[str, str]]:
    logins = [("admin", f"admin@{DEMO_DOMAIN}")]
    logins += [("therapist", f"therapist{i}@{DEMO_DOMAIN}") for i in range(1, len(THERAPISTS) + 1)]
    logins += [("patient", f"{slug}@{DEMO_DOMAIN}") for slug in PROGRAMS]
    return logins


async def _history(
    db: object, enrollment_id: int, started: datetime, now: datetime, seed: int
) -> None:
    """Logins spread over the weeks since the start, thinning out for some patients."""
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(db, AsyncSession)
    await adherence.record(
        db, enrollment_id=enrollment_id, kind=adherence.EventKind.INVITATION_ACCEPTED, at=started
    )
    day = started
    step = 2 + seed % 3
    quiet_from = now - timedelta(days=10) if seed % 4 == 1 else now
    while day < now - timedelta(hours=1):
        if day < quiet_from:
            await adherence.record(
                db,
                enrollment_id=enrollment_id,
                kind=adherence.EventKind.LOGIN,
                at=day + timedelta(hours=18),
            )
        day += timedelta(days=step)


async def load_demo(settings: Settings) -> tuple[bool, list[tuple[str, str]]]:
    """Create the demo clinic unless it exists. Returns (created, logins)."""
    database = Database(make_engine(settings, application_name="tuki.demo"))
    try:
        async with database.sessionmaker() as db, db.begin():
            if (
                await db.scalar(select(Clinic.id).where(Clinic.slug == DEMO_CLINIC_SLUG))
                is not None
            ):
                return False, demo_logins()
            now = utc_now()
            library = get_library(settings.content_dir, settings.content_overlay)
            cipher = FieldCipher(settings.encryption_keys.get_secret_value())
            password_hash = await passwords.hash_password(DEMO_PASSWORD)
            clinic = Clinic(
                slug=DEMO_CLINIC_SLUG,
                name="Tuki Demo Clinic",
                timezone="Europe/Helsinki",
                emergency_number="112",
                crisis_line_name="National crisis line",
                crisis_line_number="09 2525 0111",
                created_at=now - timedelta(days=120),
            )
            db.add(clinic)
            await db.flush()
            admin = await accounts_service.create_user(
                db,
                clinic_id=clinic.id,
                email=f"admin@{DEMO_DOMAIN}",
                full_name="Anna Admin",
                role=Role.ADMIN,
                now=now,
                password_hash=password_hash,
            )
            therapists = [
                await accounts_service.create_user(
                    db,
                    clinic_id=clinic.id,
                    email=f"therapist{i}@{DEMO_DOMAIN}",
                    full_name=name,
                    role=Role.THERAPIST,
                    now=now,
                    password_hash=password_hash,
                )
                for i, name in enumerate(THERAPISTS, start=1)
            ]
            for index, (slug, (name, days_ago)) in enumerate(PATIENTS.items()):
                user = await accounts_service.create_user(
                    db,
                    clinic_id=clinic.id,
                    email=f"{slug}@{DEMO_DOMAIN}",
                    full_name=name,
                    role=Role.PATIENT,
                    now=now,
                    password_hash=password_hash,
                )
                patient = Patient(
                    user_id=user.id, clinic_id=clinic.id, timezone="Europe/Helsinki", created_at=now
                )
                db.add(patient)
                await db.flush()
                started = now - timedelta(days=days_ago)
                enrollment = Enrollment(
                    clinic_id=clinic.id,
                    patient_id=patient.id,
                    therapist_id=therapists[index % 3].id,
                    program=slug,
                    status=EnrollmentStatus.ACTIVE,
                    created_by_id=admin.id,
                    created_at=started - timedelta(days=2),
                    activated_at=started,
                    status_changed_at=started,
                )
                db.add(enrollment)
                await db.flush()
                await _history(db, enrollment.id, started, now, index)
                await add_history(
                    db,
                    enrollment=enrollment,
                    patient_user=user,
                    therapist=therapists[index % 3],
                    library=library,
                    cipher=cipher,
                    now=now,
                    seed=index,
                )
            return True, demo_logins()
    finally:
        await database.dispose()
