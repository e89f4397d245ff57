"""Everything Tuki holds about the calling patient, readable (GDPR Art. 15 and 20).

One JSON document: account, enrollments, modules, exercise answers (decrypted), scores
with every answer, messages both ways (decrypted), risk alerts and the therapist's notes
on them, reminders and notifications, the adherence log, logins, and the audit trail of
who opened the record and why. Every query is filtered by this patient's own user or
enrollment ids; secrets (password hash, TOTP secret, token hashes) are never included.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import User, UserSession
from app.adherence.models import AdherenceEvent, EnrollmentRollup
from app.adherence.service import ROLLUP_COLUMNS
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.crypto import FieldCipher
from app.inbox.models import Message
from app.programs.catalogue import program_title
from app.programs.models import ExerciseResponse, ModuleProgress, TailoringChange
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from app.reminders.models import Notification, Reminder, ReminderPreference

FORMAT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _plain(cipher: FieldCipher, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return cipher.decrypt(value)
    except ValueError:
        return "[could not be decrypted with the current keys]"


def _row(obj: Any, *names: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = _iso(value) if isinstance(value, datetime) else value
    return out


async def patient_export(
    db: AsyncSession, *, user_id: int, patient_id: int, cipher: FieldCipher, now: datetime
) -> dict[str, Any]:
    """The patient's whole record; nobody else's rows can reach it."""
    user = await db.get(User, user_id)
    patient = await db.get(Patient, patient_id)
    if user is None or patient is None or patient.user_id != user_id:
        raise LookupError("patient not found")
    clinic = await db.get(Clinic, patient.clinic_id)
    therapist = aliased(User, name="therapist")
    enrollments = (
        await db.execute(
            select(Enrollment, therapist.full_name)
            .join(therapist, therapist.id == Enrollment.therapist_id)
            .where(Enrollment.patient_id == patient_id)
            .order_by(Enrollment.created_at, Enrollment.id)
        )
    ).all()
    ids = [e.id for e, _ in enrollments]

    async def rows(model: Any, *order: Any) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = {i: [] for i in ids}
        if ids:
            for obj in await db.scalars(
                select(model).where(model.enrollment_id.in_(ids)).order_by(*order)
            ):
                grouped[obj.enrollment_id].append(obj)
        return grouped

    modules = await rows(ModuleProgress, ModuleProgress.position, ModuleProgress.id)
    exercises = await rows(ExerciseResponse, ExerciseResponse.created_at, ExerciseResponse.id)
    scores = await rows(
        QuestionnaireResponse, QuestionnaireResponse.completed_at, QuestionnaireResponse.id
    )
    alerts = await rows(RiskAlert, RiskAlert.created_at, RiskAlert.id)
    tailoring = await rows(TailoringChange, TailoringChange.at, TailoringChange.id)
    events = await rows(AdherenceEvent, AdherenceEvent.at, AdherenceEvent.id)
    reminders = await rows(Reminder, Reminder.created_at, Reminder.id)
    preferences: dict[int, ReminderPreference] = {}
    if ids:
        preferences = {
            p.enrollment_id: p
            for p in await db.scalars(
                select(ReminderPreference).where(ReminderPreference.enrollment_id.in_(ids))
            )
        }
    rollups = {
        r.enrollment_id: r
        for r in (
            await db.scalars(
                select(EnrollmentRollup).where(EnrollmentRollup.enrollment_id.in_(ids))
            )
            if ids
            else []
        )
    }
    sender = aliased(User, name="sender")
    messages: dict[int, list[Any]] = {i: [] for i in ids}
    if ids:
        for message, sender_name in await db.execute(
            select(Message, sender.full_name)
            .outerjoin(sender, sender.id == Message.sender_id)
            .where(Message.enrollment_id.in_(ids))
            .order_by(Message.created_at, Message.id)
        ):
            messages[message.enrollment_id].append((message, sender_name))

    enrollment_docs = []
    for enrollment, therapist_name in enrollments:
        e_id = enrollment.id
        rollup = rollups.get(e_id)
        pref = preferences.get(e_id)
        enrollment_docs.append(
            {
                "id": e_id,
                "program": enrollment.program,
                "program_title": program_title(enrollment.program),
                "therapist": therapist_name,
                **_row(enrollment, "status", "created_at", "activated_at", "ended_at"),
                "modules": [
                    _row(
                        m,
                        "program",
                        "module_key",
                        "position",
                        "unlocked_at",
                        "started_at",
                        "completed_at",
                        "hidden_at",
                        "last_page",
                    )
                    for m in modules[e_id]
                ],
                "exercises": [
                    {
                        **_row(
                            x,
                            "program",
                            "module_key",
                            "exercise_id",
                            "exercise_type",
                            "status",
                            "created_at",
                            "updated_at",
                            "submitted_at",
                        ),
                        "answer": json.loads(_plain(cipher, x.data_encrypted) or "null"),
                        "derived": x.derived,
                    }
                    for x in exercises[e_id]
                ],
                "questionnaires": [
                    _row(
                        q,
                        "instrument",
                        "occasion",
                        "week",
                        "completed_at",
                        "total",
                        "band",
                        "answers",
                        "subscales",
                    )
                    for q in scores[e_id]
                ],
                "messages": [
                    {
                        "from": m.sender_role,
                        "sender": name,
                        "sent_at": _iso(m.created_at),
                        "read_at": _iso(m.read_at),
                        "text": _plain(cipher, m.body_encrypted),
                        "about_exercise_answer": bool(m.exercise_response_id),
                        "about_questionnaire_answer": bool(m.questionnaire_response_id),
                        "therapist_tags": m.functions,
                    }
                    for m, name in messages[e_id]
                ],
                "risk_alerts": [
                    {
                        **_row(a, "level", "source", "reason", "created_at", "acknowledged_at"),
                        "therapist_note": _plain(cipher, a.action_note_encrypted),
                    }
                    for a in alerts[e_id]
                ],
                "tailoring": [
                    _row(t, "kind", "detail", "at", "reverted_at") for t in tailoring[e_id]
                ],
                "reminder_preferences": (
                    _row(
                        pref,
                        "email_enabled",
                        "sms_enabled",
                        "weekdays",
                        "paused_until",
                        "program_weekday",
                        "updated_at",
                    )
                    | {
                        "quiet_start": pref.quiet_start.isoformat() if pref.quiet_start else None,
                        "quiet_end": pref.quiet_end.isoformat() if pref.quiet_end else None,
                        "program_time": pref.program_time.isoformat()
                        if pref.program_time
                        else None,
                    }
                    if pref
                    else None
                ),
                "reminders": [
                    _row(r, "rule", "channel", "status", "due_at", "sent_at", "opened_at")
                    for r in reminders[e_id]
                    if r.audience == "patient"
                ],
                "activity_summary": (
                    {
                        name: (_iso(v) if isinstance(v, datetime) else v)
                        for name, v in (
                            (c, getattr(rollup, c)) for c in ROLLUP_COLUMNS if c != "enrollment_id"
                        )
                    }
                    if rollup
                    else None
                ),
                "activity_log": [
                    _row(ev, "kind", "at", "actor_role", "detail") for ev in events[e_id]
                ],
            }
        )
    notifications = list(
        await db.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at, Notification.id)
        )
    )
    sessions = list(
        await db.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id)
            .order_by(UserSession.created_at, UserSession.id)
        )
    )
    actor = aliased(User, name="actor")
    access = (
        await db.execute(
            select(AuditEvent, actor.full_name)
            .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
            .where(AuditEvent.patient_id == patient_id)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    ).all()
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": _iso(now),
        "about": (
            "Everything Tuki holds about you. Free text you or your therapist wrote is shown "
            "decrypted. 'who_accessed' lists who opened or changed your record, when and how."
        ),
        "account": {
            "name": user.full_name,
            "email": user.email,
            "phone": patient.phone,
            "timezone": patient.timezone,
            "language": user.language,
            "created_at": _iso(user.created_at),
            "two_factor_enabled": user.totp_enabled_at is not None,
            "clinic": clinic.name if clinic else None,
        },
        "enrollments": enrollment_docs,
        "notifications": [_row(n, "text", "link", "created_at", "read_at") for n in notifications],
        "logins": [
            _row(s, "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent")
            for s in sessions
        ],
        "who_accessed": [
            {
                "at": _iso(a.at),
                "who": name if a.actor_user_id != user_id else "you",
                "role": a.actor_role,
                "action": a.action,
                "what": a.resource_type,
                "outcome": a.outcome,
            }
            for a, name in access
        ],
    }
