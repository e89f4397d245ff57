"""JSON API: one enrollment's adherence (staff) and the clinic report (admins)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.accounts.dependencies import AdminUser, StaffUser, actor_for
from app.adherence import reports
from app.adherence.schemas import AdherenceReport, EnrollmentAdherenceRead
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common.openapi import with_errors
from app.content.service import library_of
from app.deps import ClockDep, DbSession, SettingsDep

router = APIRouter(tags=["adherence"])


async def _staff_enrollment(enrollment_id: int, principal: StaffUser, db: DbSession) -> Enrollment:
    """Resolved before anything else, so a caller who may not see it gets 404."""
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


StaffEnrollment = Annotated[Enrollment, Depends(_staff_enrollment)]


@router.get(
    "/enrollments/{enrollment_id}/adherence",
    response_model=EnrollmentAdherenceRead,
    responses=with_errors(e404="Not found, or not yours to see"),
)
async def enrollment_adherence(
    enrollment: StaffEnrollment,
    request: Request,
    principal: StaffUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> EnrollmentAdherenceRead:
    """Status (on track / falling behind / inactive / dropped out / completed), progress,
    activity and the support that reached the patient, all from the rollup."""
    return await reports.enrollment_adherence(
        db,
        actor_for(request, principal),
        enrollment,
        settings=settings,
        library=library_of(request),
        now=clock.now(),
    )


@router.get("/reports/adherence", response_model=AdherenceReport, responses=with_errors())
async def adherence_report(
    request: Request,
    principal: AdminUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    program: Annotated[str | None, Query(max_length=32)] = None,
    therapist_id: Annotated[int | None, Query(ge=1)] = None,
    enrolled_from: date | None = None,
    enrolled_to: date | None = None,
    group_by: Literal["program", "therapist"] = "program",
) -> AdherenceReport:
    """The clinic's report per program or therapist: retention by module, time to dropout,
    completion, reply and feedback times in working days, therapist time per patient-week
    against the 10-20 minute norm, support-function mix and outcome change. Unknown filter
    values and a reversed period answer 422."""
    return await reports.clinic_report(
        db,
        actor_for(request, principal),
        clinic_id=principal.clinic_id,
        filters=reports.ReportFilters(
            program=program,
            therapist_id=therapist_id,
            enrolled_from=enrolled_from,
            enrolled_to=enrolled_to,
            group_by=group_by,
        ),
        settings=settings,
        library=library_of(request),
        now=clock.now(),
    )
