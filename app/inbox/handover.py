"""Handover: a therapist away for a while names a colleague who covers their patients.

While an absence is active the covering therapist's :class:`Principal` carries the absent
therapist's id in ``covering_for`` (loaded once per request), so the one policy lets them
see those patients, their threads and work list items. Nothing is copied or reassigned:
when the absence ends, access ends with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import Role, User
from app.accounts.policy import Principal
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.schemas import PersonRef
from app.common.errors import Conflict, Invalid, NotFound
from app.inbox.models import Absence
from app.inbox.schemas import AbsenceCreate, AbsenceRead

MAX_ABSENCE = timedelta(days=180)


@dataclass(frozen=True)
class Cover:
    """Who answers for an absent therapist, and until when."""

    therapist: PersonRef
    covering: PersonRef
    ends_at: datetime


def _read(absence: Absence, therapist_name: str, covering_name: str, now: datetime) -> AbsenceRead:
    return AbsenceRead(
        id=absence.id,
        therapist=PersonRef(id=absence.therapist_id, full_name=therapist_name),
        covering=PersonRef(id=absence.covering_therapist_id, full_name=covering_name),
        starts_at=absence.starts_at,
        ends_at=absence.ends_at,
        active=absence.starts_at <= now < absence.ends_at,
    )


def _overlapping(
    column: Any, user_id: int, starts_at: datetime, ends_at: datetime
) -> ColumnElement[bool]:
    return and_(column == user_id, Absence.starts_at < ends_at, Absence.ends_at > starts_at)


async def set_absence(
    db: AsyncSession, principal: Principal, actor: Actor, data: AbsenceCreate, *, now: datetime
) -> AbsenceRead:
    """Record an absence with a colleague from the same clinic covering it."""
    starts_at, ends_at = data.starts_at, data.ends_at
    if ends_at <= starts_at:
        raise Invalid("The absence must end after it starts.", field="ends_at")
    if ends_at <= now:
        raise Invalid(
            "This absence would already be over; choose an end in the future.", field="ends_at"
        )
    if ends_at - starts_at > MAX_ABSENCE:
        raise Invalid(
            "An absence can last at most 180 days; for longer, ask the clinic to reassign patients.",
            field="ends_at",
        )
    covering = await db.get(User, data.covering_therapist_id)
    if (
        covering is None
        or covering.id == principal.user_id
        or covering.clinic_id != principal.clinic_id
        or covering.role != Role.THERAPIST
        or not covering.is_active
    ):
        raise Invalid(
            "Choose an active colleague from your clinic to cover.",
            field="covering_therapist_id",
        )
    clash = await db.scalar(
        select(Absence.id)
        .where(
            or_(
                _overlapping(Absence.therapist_id, principal.user_id, starts_at, ends_at),
                _overlapping(Absence.therapist_id, covering.id, starts_at, ends_at),
            )
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict(
            "Either you or the colleague already has an absence at that time.",
            code="absence_overlaps",
        )
    absence = Absence(
        clinic_id=principal.clinic_id,
        therapist_id=principal.user_id,
        covering_therapist_id=covering.id,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=now,
    )
    db.add(absence)
    await db.flush()
    await audit.record(
        db, actor, action="create", resource_type="absence", resource_id=absence.id, at=now
    )
    return _read(absence, principal.full_name, covering.full_name, now)


async def end_absence(
    db: AsyncSession, principal: Principal, actor: Actor, absence_id: int, *, now: datetime
) -> None:
    """Come back early: an active absence ends now, an upcoming one is removed."""
    absence = await db.get(Absence, absence_id)
    if absence is None or absence.therapist_id != principal.user_id:
        raise NotFound("Absence not found.")
    if absence.ends_at <= now:
        raise Conflict("This absence is already over.", code="absence_over")
    if absence.starts_at > now:
        await db.delete(absence)
    else:
        absence.ends_at = now
    await db.flush()
    await audit.record(
        db, actor, action="end", resource_type="absence", resource_id=absence_id, at=now
    )


async def list_absences(
    db: AsyncSession, principal: Principal, *, now: datetime
) -> list[AbsenceRead]:
    """Current and upcoming absences the therapist is part of (away or covering)."""
    therapist = aliased(User)
    covering = aliased(User)
    rows = await db.execute(
        select(Absence, therapist.full_name, covering.full_name)
        .join(therapist, therapist.id == Absence.therapist_id)
        .join(covering, covering.id == Absence.covering_therapist_id)
        .where(
            or_(
                Absence.therapist_id == principal.user_id,
                Absence.covering_therapist_id == principal.user_id,
            ),
            Absence.ends_at > now,
        )
        .order_by(Absence.starts_at, Absence.id)
    )
    return [_read(a, t_name, c_name, now) for a, t_name, c_name in rows]


async def cover_now(db: AsyncSession, therapist_id: int, *, now: datetime) -> Cover | None:
    """Who is covering for ``therapist_id`` at this moment, if anyone (one query)."""
    therapist = aliased(User)
    covering = aliased(User)
    row = (
        await db.execute(
            select(Absence, therapist.full_name, covering.full_name)
            .join(therapist, therapist.id == Absence.therapist_id)
            .join(covering, covering.id == Absence.covering_therapist_id)
            .where(
                Absence.therapist_id == therapist_id,
                Absence.starts_at <= now,
                Absence.ends_at > now,
            )
            .order_by(Absence.starts_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    absence, therapist_name, covering_name = row
    return Cover(
        therapist=PersonRef(id=absence.therapist_id, full_name=therapist_name),
        covering=PersonRef(id=absence.covering_therapist_id, full_name=covering_name),
        ends_at=absence.ends_at,
    )


async def colleagues(db: AsyncSession, principal: Principal) -> list[PersonRef]:
    """Active therapists of the clinic other than the caller, for the covering choice."""
    rows = await db.execute(
        select(User.id, User.full_name)
        .where(
            User.clinic_id == principal.clinic_id,
            User.role == Role.THERAPIST,
            User.is_active.is_(True),
            User.id != principal.user_id,
        )
        .order_by(User.full_name, User.id)
    )
    return [PersonRef(id=i, full_name=n) for i, n in rows]
