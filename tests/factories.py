"""Async helpers that arrange data for tests through the same services the app uses."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import passwords
from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_hash_cache: dict[str, str] = {}


async def password_hash(password: str = PASSWORD) -> str:
    if password not in _hash_cache:
        _hash_cache[password] = await passwords.hash_password(password)
    return _hash_cache[password]


async def create_clinic(db: AsyncSession, now: datetime, name: str | None = None) -> Clinic:
    n = next(_counter)
    clinic = Clinic(
        slug=f"clinic-{n}",
        name=name or f"Clinic {n}",
        created_at=now,
        crisis_line_number="0800 100 100",
    )
    db.add(clinic)
    await db.flush()
    return clinic


async def create_user(
    db: AsyncSession, clinic: Clinic, role: Role, now: datetime, *, name: str | None = None
) -> User:
    n = next(_counter)
    return await accounts_service.create_user(
        db,
        clinic_id=clinic.id,
        email=f"{role.value}{n}@example.org",
        full_name=name or f"{role.value.title()} Person{n}",
        role=role,
        now=now,
        password_hash=await password_hash(),
    )


async def create_enrollment(
    db: AsyncSession,
    clinic: Clinic,
    therapist: User,
    now: datetime,
    *,
    program: str = "depression",
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE,
    name: str | None = None,
) -> tuple[User, Patient, Enrollment]:
    user = await create_user(db, clinic, Role.PATIENT, now, name=name)
    patient = Patient(
        user_id=user.id, clinic_id=clinic.id, timezone="Europe/Helsinki", created_at=now
    )
    db.add(patient)
    await db.flush()
    enrollment = Enrollment(
        clinic_id=clinic.id,
        patient_id=patient.id,
        therapist_id=therapist.id,
        program=program,
        status=status,
        created_at=now,
        activated_at=now if status != EnrollmentStatus.INVITED else None,
    )
    db.add(enrollment)
    await db.flush()
    return user, patient, enrollment


@dataclass
class World:
    """Two clinics with every kind of actor, for access-control tests."""

    clinic: Clinic
    admin: User
    therapist: User
    other_therapist: User
    patient_user: User
    patient: Patient
    enrollment: Enrollment
    other_patient_user: User
    other_enrollment: Enrollment
    other_clinic: Clinic
    other_admin: User
    other_clinic_therapist: User
    other_clinic_enrollment: Enrollment


async def build_world(db: AsyncSession, now: datetime) -> World:
    clinic = await create_clinic(db, now)
    admin = await create_user(db, clinic, Role.ADMIN, now)
    therapist = await create_user(db, clinic, Role.THERAPIST, now)
    other_therapist = await create_user(db, clinic, Role.THERAPIST, now)
    patient_user, patient, enrollment = await create_enrollment(db, clinic, therapist, now)
    other_patient_user, _, other_enrollment = await create_enrollment(
        db, clinic, other_therapist, now, program="gad"
    )
    other_clinic = await create_clinic(db, now)
    other_admin = await create_user(db, other_clinic, Role.ADMIN, now)
    other_clinic_therapist = await create_user(db, other_clinic, Role.THERAPIST, now)
    _, _, other_clinic_enrollment = await create_enrollment(
        db, other_clinic, other_clinic_therapist, now
    )
    await db.commit()
    return World(
        clinic,
        admin,
        therapist,
        other_therapist,
        patient_user,
        patient,
        enrollment,
        other_patient_user,
        other_enrollment,
        other_clinic,
        other_admin,
        other_clinic_therapist,
        other_clinic_enrollment,
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log in over the API and make the client send the CSRF token from then on."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
