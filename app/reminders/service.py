"""Reminder preferences, clinic rules, reminder lists, in-app notifications, tracked links, report.

Routes and pages share these functions. They take an ``AsyncSession`` and plain values,
flush but never commit, and each read or change of a patient's data adds one audit row.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, bindparam, case, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.adherence import service as adherence
from app.adherence.models import AdherenceEvent
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment, Patient
from app.clinics.schemas import EnrollmentUpdate
from app.common.crypto import token_hash
from app.common.errors import Invalid, NotFound
from app.config import Settings
from app.programs.catalogue import program_title
from app.reminders import render
from app.reminders.models import Notification, Reminder, ReminderPreference, ReminderRuleConfig
from app.reminders.rules import RULE_LABELS, WEEKDAYS, Rule, RuleConfig, at_local, zone
from app.reminders.schemas import (
    FailureRead,
    NotificationList,
    NotificationRead,
    PreferencesRead,
    PreferencesUpdate,
    ProgramStats,
    ReminderRead,
    ReminderReport,
    RuleConfigRead,
    RuleConfigUpdate,
    RuleStats,
)
from app.reminders.sql import epoch_seconds

MAX_PAUSE = timedelta(days=366)
FOLLOW_UP = timedelta(hours=48)
STATUSES = ("pending", "sending", "sent", "failed", "cancelled")


# Preferences -------------------------------------------------------------------------------


def _preferences_read(
    enrollment: Enrollment,
    patient: Patient,
    pref: ReminderPreference | None,
    settings: Settings,
) -> PreferencesRead:
    sms_available = bool(settings.reminder_webhook_url)
    if pref is None:
        return PreferencesRead(
            enrollment_id=enrollment.id,
            channels=["in_app", "email"],
            weekdays=list(WEEKDAYS),
            quiet_hours_start=settings.reminder_quiet_hours_start,
            quiet_hours_end=settings.reminder_quiet_hours_end,
            paused_until=None,
            program_weekday=None,
            program_time=None,
            phone=patient.phone,
            timezone=patient.timezone,
            sms_available=sms_available,
            is_default=True,
        )
    channels = ["in_app"]
    if pref.email_enabled:
        channels.append("email")
    if pref.sms_enabled:
        channels.append("sms")
    return PreferencesRead(
        enrollment_id=enrollment.id,
        channels=channels,
        weekdays=[WEEKDAYS[d] for d in sorted(pref.weekdays) if 0 <= d <= 6],
        quiet_hours_start=pref.quiet_start,
        quiet_hours_end=pref.quiet_end,
        paused_until=pref.paused_until,
        program_weekday=(
            WEEKDAYS[pref.program_weekday] if pref.program_weekday is not None else None
        ),
        program_time=pref.program_time,
        phone=patient.phone,
        timezone=patient.timezone,
        sms_available=sms_available,
        is_default=False,
    )


async def _patient_of(db: AsyncSession, enrollment: Enrollment) -> Patient:
    patient = await db.get(Patient, enrollment.patient_id)
    if patient is None:
        raise NotFound("Patient not found.")
    return patient


async def read_preferences(
    db: AsyncSession, actor: Actor, enrollment: Enrollment, *, settings: Settings
) -> PreferencesRead:
    """The patient's reminder choices (or the defaults), audited as a read."""
    patient = await _patient_of(db, enrollment)
    pref = await db.get(ReminderPreference, enrollment.id)
    await audit.record(
        db,
        actor,
        action="read",
        resource_type="reminder_preference",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return _preferences_read(enrollment, patient, pref, settings)


async def update_preferences(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    data: PreferencesUpdate,
    *,
    settings: Settings,
    now: datetime,
) -> PreferencesRead:
    """Replace the patient's choices. SMS needs a phone number and a configured gateway."""
    patient = await _patient_of(db, enrollment)
    if data.paused_until is not None:
        if data.paused_until <= now:
            raise Invalid("Choose a moment in the future.", field="paused_until")
        if data.paused_until > now + MAX_PAUSE:
            raise Invalid("Reminders can be paused for a year at most.", field="paused_until")
    if "sms" in data.channels:
        if not settings.reminder_webhook_url:
            raise Invalid("Text message reminders are not available here.", field="channels")
        if not (data.phone or patient.phone):
            raise Invalid("Add a phone number for text message reminders.", field="phone")
    if data.phone is not None and data.phone != patient.phone:
        await clinics_service.update_enrollment(
            db, actor, enrollment, EnrollmentUpdate(phone=data.phone), now=now
        )
    pref = await db.get(ReminderPreference, enrollment.id)
    if pref is None:
        pref = ReminderPreference(enrollment_id=enrollment.id)
        db.add(pref)
    pref.email_enabled = "email" in data.channels
    pref.sms_enabled = "sms" in data.channels
    pref.weekdays = sorted(WEEKDAYS.index(d) for d in data.weekdays)
    pref.quiet_start = data.quiet_hours_start
    pref.quiet_end = data.quiet_hours_end
    pref.paused_until = data.paused_until
    pref.program_weekday = (
        WEEKDAYS.index(data.program_weekday) if data.program_weekday is not None else None
    )
    pref.program_time = data.program_time
    pref.updated_at = now
    await db.flush()
    await audit.record(
        db,
        actor,
        action="update",
        resource_type="reminder_preference",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return _preferences_read(enrollment, patient, pref, settings)


def pause_until_day(day: date, timezone: str) -> datetime:
    """ "Pause until <date>": reminders start again at the start of that day, the patient's time."""
    return at_local(day, time(0, 0), zone(timezone))


# Clinic rules ------------------------------------------------------------------------------


def _rules_read(config: RuleConfig, *, is_default: bool) -> RuleConfigRead:
    values = config.as_dict()
    days = [values.pop(f"inactivity_days_{i}") for i in (1, 2, 3)]
    return RuleConfigRead(**values, inactivity_days=days, is_default=is_default)


async def effective_rules(db: AsyncSession, clinic_id: int, settings: Settings) -> RuleConfig:
    row = await db.get(ReminderRuleConfig, clinic_id)
    return RuleConfig.from_row(row) if row is not None else RuleConfig.defaults(settings)


async def read_rules(db: AsyncSession, clinic_id: int, *, settings: Settings) -> RuleConfigRead:
    """The clinic's reminder rules (its own, or the defaults)."""
    row = await db.get(ReminderRuleConfig, clinic_id)
    if row is None:
        return _rules_read(RuleConfig.defaults(settings), is_default=True)
    return _rules_read(RuleConfig.from_row(row), is_default=False)


async def update_rules(
    db: AsyncSession, actor: Actor, clinic_id: int, data: RuleConfigUpdate, *, now: datetime
) -> RuleConfigRead:
    """Set the clinic's rules; the next planning run uses them."""
    values = data.model_dump()
    days = values.pop("inactivity_days")
    for i, value in enumerate(days, start=1):
        values[f"inactivity_days_{i}"] = value
    row = await db.get(ReminderRuleConfig, clinic_id)
    if row is None:
        row = ReminderRuleConfig(clinic_id=clinic_id, **values)
        db.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    row.updated_at = now
    row.updated_by_id = actor.user_id
    await db.flush()
    await audit.record(
        db,
        actor,
        action="update",
        resource_type="reminder_rules",
        resource_id=clinic_id,
        clinic_id=clinic_id,
    )
    return _rules_read(RuleConfig.from_row(row), is_default=False)


# Reminders of one enrollment ---------------------------------------------------------------


async def list_reminders(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    *,
    patient_view: bool,
    limit: int = 100,
    audited: bool = True,
) -> list[ReminderRead]:
    """Newest first. Patients see their own nudges; staff also see the therapist's alerts.

    ``audited=False`` for pages that already record one row for everything they show.
    """
    stmt = select(Reminder).where(Reminder.enrollment_id == enrollment.id)
    if patient_view:
        stmt = stmt.where(Reminder.audience == "patient")
    rows = await db.scalars(stmt.order_by(Reminder.due_at.desc(), Reminder.id.desc()).limit(limit))
    if not audited:
        return [ReminderRead.model_validate(r) for r in rows]
    await audit.record(
        db,
        actor,
        action="list",
        resource_type="reminder",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    return [ReminderRead.model_validate(r) for r in rows]


# Notifications -----------------------------------------------------------------------------


# The bell is on every page, so its count is built once.
_UNREAD = (
    select(func.count())
    .select_from(Notification)
    .where(Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))
)
UNREAD_COUNT = _UNREAD.scalar_subquery()
"""The bell's count as a column (bind parameter ``user_id``), for pages to read it in the
same statement as the other badges."""


async def unread_count(db: AsyncSession, user_id: int) -> int:
    """The number on the bell: one indexed count."""
    return int(await db.scalar(_UNREAD, {"user_id": user_id}) or 0)


async def list_notifications(
    db: AsyncSession, user_id: int, *, limit: int = 50
) -> NotificationList:
    rows = await db.scalars(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    items = [NotificationRead.model_validate(n) for n in rows]
    return NotificationList(items=items, unread=await unread_count(db, user_id))


async def _own_notification(db: AsyncSession, user_id: int, notification_id: int) -> Notification:
    notification = await db.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise NotFound("Notification not found.")
    return notification


async def mark_read(
    db: AsyncSession, actor: Actor, user_id: int, notification_id: int, *, now: datetime
) -> Notification:
    """Mark one of the caller's notifications read; opening it also counts as opening its reminder."""
    notification = await _own_notification(db, user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = now
    if notification.reminder_id is not None:
        reminder = await db.get(Reminder, notification.reminder_id)
        if reminder is not None:
            await _opened(db, actor, reminder, now=now)
    await db.flush()
    return notification


async def mark_all_read(db: AsyncSession, user_id: int, *, now: datetime) -> None:
    await db.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
    )


# Tracked links -----------------------------------------------------------------------------


async def _opened(db: AsyncSession, actor: Actor, reminder: Reminder, *, now: datetime) -> None:
    """Record the first opening: ``reminder_opened`` in the adherence log and one audit row."""
    if reminder.opened_at is not None:
        return
    reminder.opened_at = now
    await db.execute(
        update(Notification)
        .where(Notification.reminder_id == reminder.id, Notification.read_at.is_(None))
        .values(read_at=now)
    )
    if reminder.audience == "patient" and reminder.enrollment_id is not None:
        await adherence.record(
            db,
            enrollment_id=reminder.enrollment_id,
            kind=adherence.EventKind.REMINDER_OPENED,
            at=now,
            actor_role="patient",
            detail={"reminder_id": reminder.id, "rule": reminder.rule, "channel": reminder.channel},
        )
    await audit.record(
        db,
        actor,
        action="open",
        resource_type="reminder",
        resource_id=reminder.id,
        clinic_id=reminder.clinic_id,
    )


async def open_tracked_link(
    db: AsyncSession, actor: Actor, token: str, *, settings: Settings, now: datetime
) -> str:
    """Record that a reminder link was opened; the answer is where to send the browser.

    Unknown or superseded tokens still lead somewhere useful (the home page), so an old
    e-mail never shows an error.
    """
    if not token or len(token) > 100:
        return "/"
    reminder = await db.scalar(
        select(Reminder).where(
            Reminder.token_hash == token_hash(settings.secret_key.get_secret_value(), token)
        )
    )
    if reminder is None:
        return "/"
    await _opened(db, actor, reminder, now=now)
    await db.flush()
    return render.target_path(reminder.rule, reminder.audience, reminder.enrollment_id)


# Report ------------------------------------------------------------------------------------


async def report(db: AsyncSession, actor: Actor, clinic_id: int) -> ReminderReport:
    """Counts per status, rule and program, recent failures, and how often activity followed."""
    in_clinic = Reminder.clinic_id == clinic_id
    opened = func.sum(case((Reminder.opened_at.is_not(None), 1), else_=0))
    by_rule_status = await db.execute(
        select(Reminder.rule, Reminder.status, func.count(), opened)
        .where(in_clinic)
        .group_by(Reminder.rule, Reminder.status)
    )
    by_status = dict.fromkeys(STATUSES, 0)
    per_rule: dict[str, dict[str, int]] = {}
    for rule, status, count, opened_count in by_rule_status:
        by_status[status] = by_status.get(status, 0) + int(count)
        stats = per_rule.setdefault(rule, dict.fromkeys((*STATUSES, "opened"), 0))
        stats[status] += int(count)
        stats["opened"] += int(opened_count or 0)

    followed = exists().where(
        AdherenceEvent.enrollment_id == Reminder.enrollment_id,
        AdherenceEvent.actor_role == "patient",
        AdherenceEvent.kind.in_(
            [
                k.value
                for k in adherence.PATIENT_ACTIVITY
                if k is not adherence.EventKind.REMINDER_OPENED
            ]
        ),
        AdherenceEvent.at >= Reminder.sent_at,
        epoch_seconds(AdherenceEvent.at)
        <= epoch_seconds(Reminder.sent_at) + int(FOLLOW_UP.total_seconds()),
    )
    nudges = await db.execute(
        select(
            Reminder.rule,
            func.count(),
            func.sum(case((followed, 1), else_=0)),
        )
        .where(
            in_clinic,
            Reminder.audience == "patient",
            Reminder.channel == "in_app",  # every nudge has exactly one in-app row
            Reminder.status == "sent",
        )
        .group_by(Reminder.rule)
    )
    follow: dict[str, tuple[int, int]] = {rule: (int(n), int(f or 0)) for rule, n, f in nudges}
    rules_out = []
    for rule in Rule:
        stats = per_rule.get(rule.value, dict.fromkeys((*STATUSES, "opened"), 0))
        sent_nudges, followed_count = follow.get(rule.value, (0, 0))
        rules_out.append(
            RuleStats(
                rule=rule.value,
                label=RULE_LABELS[rule],
                planned=sum(stats[s] for s in STATUSES),
                pending=stats["pending"] + stats["sending"],
                sent=stats["sent"],
                failed=stats["failed"],
                cancelled=stats["cancelled"],
                opened=stats["opened"],
                nudges_sent=sent_nudges,
                followed_by_activity=followed_count,
                followed_rate=round(followed_count / sent_nudges, 3) if sent_nudges else None,
            )
        )

    by_program = await db.execute(
        select(
            Enrollment.program,
            func.count(),
            func.sum(case((Reminder.status == "sent", 1), else_=0)),
            func.sum(case((Reminder.status == "failed", 1), else_=0)),
            opened,
        )
        .join(Enrollment, and_(Enrollment.id == Reminder.enrollment_id))
        .where(in_clinic)
        .group_by(Enrollment.program)
        .order_by(Enrollment.program)
    )
    programs = [
        ProgramStats(
            program=program,
            title=program_title(program),
            planned=int(planned),
            sent=int(sent or 0),
            failed=int(failed or 0),
            opened=int(opened_count or 0),
        )
        for program, planned, sent, failed, opened_count in by_program
    ]
    failures = await db.scalars(
        select(Reminder)
        .where(in_clinic, Reminder.status == "failed")
        .order_by(Reminder.due_at.desc(), Reminder.id.desc())
        .limit(20)
    )
    await audit.record(
        db, actor, action="read", resource_type="reminder_report", clinic_id=clinic_id
    )
    return ReminderReport(
        by_status=by_status,
        rules=rules_out,
        programs=programs,
        failures=[
            FailureRead(
                id=r.id,
                rule=r.rule,
                channel=r.channel,
                enrollment_id=r.enrollment_id,
                attempts=r.attempts,
                last_error=r.last_error,
                due_at=r.due_at,
            )
            for r in failures
        ],
        follow_up_hours=int(FOLLOW_UP.total_seconds() // 3600),
    )
