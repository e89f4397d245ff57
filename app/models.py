"""Imports every domain's models so Alembic and mappers see the whole schema."""

from app.accounts.models import Invitation, LoginThrottle, User, UserSession
from app.adherence.models import AdherenceEvent, EnrollmentRollup
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.idempotency_models import IdempotencyRecord
from app.db import Base
from app.programs.models import ExerciseResponse, ModuleProgress, PacingOverride, TailoringChange
from app.questionnaires.models import QuestionnaireResponse, RiskAlert

__all__ = [
    "AdherenceEvent",
    "AuditEvent",
    "Base",
    "Clinic",
    "Enrollment",
    "EnrollmentRollup",
    "ExerciseResponse",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "ModuleProgress",
    "PacingOverride",
    "Patient",
    "QuestionnaireResponse",
    "RiskAlert",
    "TailoringChange",
    "User",
    "UserSession",
]
