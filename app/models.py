"""Imports every domain's models so Alembic and mappers see the whole schema."""

from app.accounts.models import Invitation, LoginThrottle, User, UserSession
from app.adherence.models import (
    AdherenceEvent,
    AdherenceThreshold,
    EnrollmentRollup,
    SupportWait,
)
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.idempotency_models import IdempotencyRecord
from app.db import Base
from app.inbox.models import Absence, Message, Snippet
from app.programs.models import ExerciseResponse, ModuleProgress, PacingOverride, TailoringChange
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from app.reminders.models import Notification, Reminder, ReminderPreference, ReminderRuleConfig

__all__ = [
    "Absence",
    "AdherenceEvent",
    "AdherenceThreshold",
    "AuditEvent",
    "Base",
    "Clinic",
    "Enrollment",
    "EnrollmentRollup",
    "ExerciseResponse",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "Message",
    "ModuleProgress",
    "Notification",
    "PacingOverride",
    "Patient",
    "QuestionnaireResponse",
    "Reminder",
    "ReminderPreference",
    "ReminderRuleConfig",
    "RiskAlert",
    "Snippet",
    "SupportWait",
    "TailoringChange",
    "User",
    "UserSession",
]
