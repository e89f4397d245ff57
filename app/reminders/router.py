"""JSON API: reminder preferences and status per enrollment, notifications, clinic rules, report."""

from __future__ import annotations

from fastapi import Request

from app.accounts.dependencies import AdminUser, AnyUser, PatientUser, actor_for
from app.accounts.models import Role
from app.clinics import service as clinics_service
from app.common.openapi import ERRORS, PathId, with_errors
from app.common.routing import Router
from app.deps import ClockDep, DbSession, SettingsDep
from app.reminders import service
from app.reminders.schemas import (
    NotificationList,
    NotificationRead,
    PreferencesRead,
    PreferencesUpdate,
    ReminderRead,
    ReminderReport,
    RuleConfigRead,
    RuleConfigUpdate,
)

router = Router(tags=["reminders"])


@router.get(
    "/enrollments/{enrollment_id}/reminder-preferences",
    response_model=PreferencesRead,
    responses=with_errors(e404="No such enrollment, or not yours to see"),
)
async def get_reminder_preferences(
    enrollment_id: PathId,
    request: Request,
    principal: AnyUser,
    db: DbSession,
    settings: SettingsDep,
) -> PreferencesRead:
    """The patient's reminder channels, days, quiet hours, pause and program time."""
    enrollment = await clinics_service.get_enrollment(db, principal, enrollment_id)
    return await service.read_preferences(
        db, actor_for(request, principal), enrollment, settings=settings
    )


@router.put(
    "/enrollments/{enrollment_id}/reminder-preferences",
    response_model=PreferencesRead,
    responses=with_errors(e404="No such enrollment, or not yours"),
)
async def put_reminder_preferences(
    enrollment_id: PathId,
    body: PreferencesUpdate,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> PreferencesRead:
    """Replace the patient's own reminder choices (their program, their pace)."""
    enrollment = await clinics_service.get_enrollment(db, principal, enrollment_id)
    return await service.update_preferences(
        db, actor_for(request, principal), enrollment, body, settings=settings, now=clock.now()
    )


@router.get(
    "/enrollments/{enrollment_id}/reminders",
    response_model=list[ReminderRead],
    responses=with_errors(e404="No such enrollment, or not yours to see"),
)
async def list_enrollment_reminders(
    enrollment_id: PathId, request: Request, principal: AnyUser, db: DbSession
) -> list[ReminderRead]:
    """Reminders planned and sent for an enrollment, newest first, with their status."""
    enrollment = await clinics_service.get_enrollment(db, principal, enrollment_id)
    return await service.list_reminders(
        db,
        actor_for(request, principal),
        enrollment,
        patient_view=principal.role is Role.PATIENT,
    )


@router.get("/notifications", response_model=NotificationList, responses=ERRORS)
async def list_notifications(principal: AnyUser, db: DbSession) -> NotificationList:
    """The caller's in-app notifications, newest first, and how many are unread."""
    return await service.list_notifications(db, principal.user_id)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationRead,
    responses=with_errors(e404="No such notification, or not yours"),
)
async def read_notification(
    notification_id: PathId, request: Request, principal: AnyUser, db: DbSession, clock: ClockDep
) -> NotificationRead:
    """Mark one of the caller's notifications as read."""
    notification = await service.mark_read(
        db, actor_for(request, principal), principal.user_id, notification_id, now=clock.now()
    )
    return NotificationRead.model_validate(notification)


@router.get("/reminder-rules", response_model=RuleConfigRead, responses=ERRORS)
async def get_reminder_rules(
    principal: AdminUser, db: DbSession, settings: SettingsDep
) -> RuleConfigRead:
    """The clinic's reminder rules: thresholds, cap and which rules are on."""
    return await service.read_rules(db, principal.clinic_id, settings=settings)


@router.put("/reminder-rules", response_model=RuleConfigRead, responses=ERRORS)
async def put_reminder_rules(
    body: RuleConfigUpdate, request: Request, principal: AdminUser, db: DbSession, clock: ClockDep
) -> RuleConfigRead:
    """Set the clinic's reminder rules; the next planning run applies them."""
    return await service.update_rules(
        db, actor_for(request, principal), principal.clinic_id, body, now=clock.now()
    )


@router.get("/reports/reminders", response_model=ReminderReport, responses=ERRORS)
async def reminder_report(request: Request, principal: AdminUser, db: DbSession) -> ReminderReport:
    """Planned, sent, failed and opened reminders per status, rule and program, for the clinic."""
    return await service.report(db, actor_for(request, principal), principal.clinic_id)
