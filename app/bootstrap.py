"""First-run helpers: creating a clinic and its first admin from the command line."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.accounts import passwords
from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.clinics.models import Clinic
from app.common.clock import utc_now
from app.config import Settings
from app.db import Database, make_engine


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "clinic"


async def create_clinic_admin(
    settings: Settings, *, email: str, full_name: str, clinic_name: str, password: str
) -> None:
    """Refuses weak passwords and existing e-mails with a ValueError that says why."""
    problem = passwords.password_problem(
        password, min_length=settings.password_min_length, email=email, name=full_name
    )
    if problem:
        raise ValueError(problem)
    database = Database(make_engine(settings, application_name="tuki.cli"))
    try:
        async with database.sessionmaker() as db, db.begin():
            if await accounts_service.email_taken(db, email):
                raise ValueError("an account with this e-mail address already exists")
            now = utc_now()
            slug = slugify(clinic_name)
            clinic = await db.scalar(select(Clinic).where(Clinic.slug == slug))
            if clinic is None:
                clinic = Clinic(slug=slug, name=clinic_name.strip(), created_at=now)
                db.add(clinic)
                await db.flush()
            await accounts_service.create_user(
                db,
                clinic_id=clinic.id,
                email=email,
                full_name=full_name,
                role=Role.ADMIN,
                now=now,
                password_hash=await passwords.hash_password(password),
            )
    finally:
        await database.dispose()
