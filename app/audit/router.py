"""A patient's own access log: who has opened or changed their record, and when."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.dependencies import PatientUser, actor_for
from app.accounts.models import User
from app.accounts.policy import Principal
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.common.openapi import ERRORS
from app.common.routing import Router
from app.deps import ClockDep, DbSession
from app.templating import reader_zone, render

router = Router(tags=["audit"])
pages = Router(include_in_schema=False)

ROLE_LABELS = {"therapist": "Therapist", "admin": "Clinic administrator", "system": "Tuki"}


class AccessLogEntry(BaseModel):
    at: datetime
    who: str
    role: str
    action: str
    what: str


async def _access_log(
    db: AsyncSession, principal: Principal, request: Request, now: datetime
) -> list[AccessLogEntry]:
    """Everyone else's reads and writes of this patient's data, newest first. The patient's
    own actions are left out, and so are addresses; the view itself is audited."""
    assert principal.patient_id is not None
    rows = (
        await db.execute(
            select(AuditEvent, User.full_name)
            .outerjoin(User, User.id == AuditEvent.actor_user_id)
            .where(
                AuditEvent.patient_id == principal.patient_id,
                AuditEvent.outcome == "ok",
                (AuditEvent.actor_user_id != principal.user_id)
                | AuditEvent.actor_user_id.is_(None),
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(500)
        )
    ).all()
    await audit.record(
        db,
        actor_for(request, principal),
        action="read",
        resource_type="access_log",
        patient_id=principal.patient_id,
        clinic_id=principal.clinic_id,
        at=now,
    )
    return [
        AccessLogEntry(
            at=event.at,
            who=name or ROLE_LABELS.get(event.actor_role or "system", "Tuki"),
            role=ROLE_LABELS.get(event.actor_role or "system", event.actor_role or "Tuki"),
            action=event.action,
            what=event.resource_type.replace("_", " "),
        )
        for event, name in rows
    ]


@router.get("/me/access-log", response_model=list[AccessLogEntry], responses=ERRORS)
async def access_log(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> list[AccessLogEntry]:
    """Who has opened or changed my record, and when (the patient's right to see the log)."""
    return await _access_log(db, principal, request, clock.now())


@pages.get("/patient/access-log")
async def access_log_page(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    entries = await _access_log(db, principal, request, clock.now())
    return render(
        request,
        "patient/access_log.html",
        {"entries": entries},
        zone=reader_zone(principal),
    )
