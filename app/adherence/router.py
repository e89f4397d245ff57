"""JSON API: one enrollment's adherence (staff) and the clinic report (admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request

from app.accounts.dependencies import AdminUser, StaffUser, actor_for
from app.adherence import reports
from app.adherence.schemas import AdherenceReport, EnrollmentAdherenceRead
from app.clinics.schemas import ProgramSlug
from app.common.clock import Clock
from app.common.openapi import IsoDate, PathId, QueryId, with_errors
from app.common.routing import Router
from app.content.service import library_of
from app.deps import ClockDep, DbSession, SettingsDep

router = Router(tags=["adherence"])


@router.get(
    "/enrollments/{enrollment_id}/adherence",
    response_model=EnrollmentAdherenceRead,
    responses=with_errors(e404="Not found, or not yours to see"),
)
async def enrollment_adherence(
    enrollment_id: PathId, request: Request, principal: StaffUser, db: DbSession
) -> EnrollmentAdherenceRead:
    """Status (on track / falling behind / inactive / dropped out / completed), progress,
    activity and the support that reached the patient, all from the rollup. The access
    check rides on the same statement that reads the rollup (404 if not yours to see).

    Settings and clock come straight from the app state rather than through the plain
    ``def`` dependencies, which FastAPI runs in a worker thread: those two thread hops
    were a tenth of this request's CPU in the profile (benchmarks/README.md, scenario A)."""
    state = request.app.state
    clock: Clock = state.clock
    return await reports.read_enrollment_adherence(
        db,
        principal,
        actor_for(request, principal),
        enrollment_id,
        settings=state.settings,
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
    program: Annotated[ProgramSlug | None, Query(max_length=32)] = None,
    therapist_id: QueryId = None,
    enrolled_from: IsoDate | None = None,
    enrolled_to: IsoDate | None = None,
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
