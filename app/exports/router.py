"""JSON/CSV API: the research CSV and its dictionary, FHIR bundles, the patient's own data."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy import Integer, String, insert, literal, select

from app.accounts.dependencies import AdminUser, PatientUser, TherapistUser, actor_for
from app.accounts.policy import Access, Guard, Principal
from app.adherence import reports
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.clinics.schemas import ProgramSlug
from app.common.errors import PermissionDenied
from app.common.openapi import IsoDate, PathId, QueryId, with_errors
from app.common.routing import Router
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep
from app.exports import fhir, tabular
from app.exports.patient import patient_export

router = Router(tags=["exports"])


class AuditedGuard(Guard):
    """The same rule as :class:`Guard`, and a refusal is written to the audit trail too:
    someone trying to take the clinic's data out is worth knowing about."""

    def __init__(self, access: Access, *, resource_type: str) -> None:
        super().__init__(access)
        self.resource_type = resource_type

    async def __call__(self, request: Request) -> Principal | None:
        try:
            return await super().__call__(request)
        except PermissionDenied as exc:
            principal = getattr(request.state, "principal", None)
            await audit.record(
                request.state.db,
                actor_for(request, principal),
                action="export",
                resource_type=self.resource_type,
                outcome="denied",
                at=request.app.state.clock.now(),
            )
            raise exc.keep_writes() from None


EXPORT_ADMIN = AuditedGuard(Access.ADMIN, resource_type="adherence_csv")
ExportAdmin = Annotated[Principal, Depends(EXPORT_ADMIN)]


@router.get(
    "/exports/adherence.csv",
    response_class=StreamingResponse,
    responses={
        **with_errors(),
        200: {"content": {"text/csv": {}}, "description": "Pseudonymised CSV"},
    },
)
async def adherence_csv(
    request: Request,
    principal: ExportAdmin,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    dataset: Literal["enrollments", "events", "scores"] = "enrollments",
    program: Annotated[ProgramSlug | None, Query(max_length=32)] = None,
    therapist_id: QueryId = None,
    enrolled_from: IsoDate | None = None,
    enrolled_to: IsoDate | None = None,
) -> StreamingResponse:
    """Pseudonymised research data (clinic admins only; a refusal is audited). Streamed:
    memory stays flat whatever the clinic's size. Columns: ``/exports/data-dictionary``."""
    now = clock.now()
    filters = reports.ReportFilters(
        program=program,
        therapist_id=therapist_id,
        enrolled_from=enrolled_from,
        enrolled_to=enrolled_to,
    )
    await reports.check_filters(db, principal.clinic_id, filters)
    actor = actor_for(request, principal)
    await audit.record(
        db,
        actor,
        action="export",
        resource_type="adherence_csv",
        resource_id=dataset,
        clinic_id=principal.clinic_id,
        at=now,
    )
    # The disclosure log: one row per patient whose (pseudonymised) data left, one statement.
    covered = tabular.covered_enrollments(principal.clinic_id, filters).subquery()
    await db.execute(
        insert(AuditEvent).from_select(
            [
                "at",
                "actor_user_id",
                "actor_role",
                "action",
                "resource_type",
                "resource_id",
                "patient_id",
                "clinic_id",
                "outcome",
                "ip_address",
                "request_path",
            ],
            select(
                literal(now, AuditEvent.at.type),
                literal(actor.user_id, Integer()),
                literal(actor.role, String()),
                literal("disclose", String()),
                literal("adherence_csv", String()),
                literal(dataset, String()),
                covered.c.patient_id,
                literal(principal.clinic_id, Integer()),
                literal("ok", String()),
                literal(actor.ip_address, String()),
                literal(actor.request_path, String()),
            ).select_from(covered),
        )
    )
    body = tabular.stream_csv(
        request.app.state.db,
        dataset,
        clinic_id=principal.clinic_id,
        filters=filters,
        settings=settings,
        library=library_of(request),
        now=now,
    )
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tuki-{dataset}.csv"'},
    )


@router.get(
    "/exports/data-dictionary",
    response_class=PlainTextResponse,
    responses={**with_errors(), 200: {"content": {"text/markdown": {}}}},
)
async def data_dictionary(principal: AdminUser) -> PlainTextResponse:
    """Every dataset and column of the research CSV, as Markdown."""
    return PlainTextResponse(tabular.render_dictionary(), media_type="text/markdown; charset=utf-8")


async def _therapist_enrollment(
    enrollment_id: PathId, principal: TherapistUser, db: DbSession
) -> Enrollment:
    return await clinics_service.get_enrollment(db, principal, enrollment_id)


@router.get(
    "/enrollments/{enrollment_id}/fhir",
    responses={
        **with_errors(e404="Not found, or not yours to see"),
        200: {"content": {"application/fhir+json": {}}, "description": "FHIR R4 Bundle"},
    },
)
async def enrollment_fhir(
    enrollment: Annotated[Enrollment, Depends(_therapist_enrollment)],
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """The treatment as a FHIR R4 Bundle for another system (the patient's therapist only;
    logged as a disclosure). Message bodies are never included."""
    now = clock.now()
    bundle = await fhir.enrollment_bundle(
        db, enrollment, settings=settings, library=library_of(request), now=now
    )
    await audit.record(
        db,
        actor_for(request, principal),
        action="disclose",
        resource_type="fhir_bundle",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
        at=now,
    )
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/me/export", responses=with_errors())
async def my_data(
    request: Request,
    principal: PatientUser,
    db: DbSession,
    cipher: CipherDep,
    clock: ClockDep,
) -> JSONResponse:
    """Everything Tuki holds about you, readable: account, treatment, your answers and
    messages, scores, reminders, your activity log and who opened your record."""
    now = clock.now()
    if principal.patient_id is None:
        raise PermissionDenied("Only patients have data to export here.")
    document = await patient_export(
        db, user_id=principal.user_id, patient_id=principal.patient_id, cipher=cipher, now=now
    )
    await audit.record(
        db,
        actor_for(request, principal),
        action="export",
        resource_type="patient_data",
        resource_id=principal.patient_id,
        patient_id=principal.patient_id,
        clinic_id=principal.clinic_id,
        at=now,
    )
    return JSONResponse(
        document,
        headers={"Content-Disposition": 'attachment; filename="tuki-my-data.json"'},
    )
