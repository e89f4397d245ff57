"""Imports every domain's models so Alembic and mappers see the whole schema."""

from app.accounts.models import Invitation, LoginThrottle, User, UserSession
from app.adherence.models import AdherenceEvent, EnrollmentRollup
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment, Patient
from app.common.idempotency_models import IdempotencyRecord
from app.db import Base

__all__ = [
    "AdherenceEvent",
    "AuditEvent",
    "Base",
    "Clinic",
    "Enrollment",
    "EnrollmentRollup",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "Patient",
    "User",
    "UserSession",
]
