"""Response shapes for adherence status and the clinic report."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class ThresholdsRead(BaseModel):
    falling_behind_days: int
    inactive_days: int
    dropout_days: int
    pace_slack_modules: int
    source: str


class SupportRead(BaseModel):
    """What support reached the patient: answered waits in working days (weekends skipped)."""

    replies: int
    median_reply_working_days: float | None
    feedback_given: int
    median_feedback_working_days: float | None
    awaiting_reply_since: datetime | None
    awaiting_feedback_since: datetime | None
    gestures: dict[str, int]


class EnrollmentAdherenceRead(BaseModel):
    enrollment_id: int
    program: str
    enrollment_status: str
    status: str
    status_label: str
    thresholds: ThresholdsRead
    started_at: datetime | None
    days_since_activity: int | None
    modules_completed: int
    modules_total: int
    exercises_submitted: int
    questionnaires_completed: int
    logins: int
    first_activity_at: datetime | None
    last_activity_at: datetime | None
    last_login_at: datetime | None
    last_module_completed_at: datetime | None
    last_questionnaire_at: datetime | None
    messages_from_patient: int
    messages_to_patient: int
    last_patient_message_at: datetime | None
    last_therapist_message_at: datetime | None
    reminders_sent: int
    reminders_opened: int
    alerts_raised: int
    support: SupportRead


class RetentionRead(BaseModel):
    module: int
    reached: int
    share: float


class SurvivalRead(BaseModel):
    week: int
    at_risk: int
    dropped: int
    share_active: float


class OutcomeRead(BaseModel):
    instrument: str
    title: str
    patients: int
    mean_baseline: float
    mean_latest: float
    mean_change: float
    reliably_improved: int
    reliably_improved_share: float | None
    reliably_deteriorated: int


class GroupReport(BaseModel):
    key: str
    label: str
    enrollments: int
    not_started: int
    started: int
    status_counts: dict[str, int]
    completion_rate: float | None
    dropout_rate: float | None
    dropout_median_week: float | None
    dropout_mean_share_of_modules_done: float | None
    retention: list[RetentionRead]
    survival: list[SurvivalRead]
    replies: int
    median_reply_working_days: float | None
    replies_within_promise_share: float | None
    feedback_given: int
    median_feedback_working_days: float | None
    patient_weeks: float
    messages_from_patients: int
    messages_from_therapists: int
    messages_per_patient_week: float | None
    therapist_minutes_per_patient_week: float | None
    minutes_norm: str | None
    support_mix: dict[str, int]
    outcomes: list[OutcomeRead]


class ReportFiltersRead(BaseModel):
    program: str | None
    therapist_id: int | None
    enrolled_from: date | None
    enrolled_to: date | None
    group_by: str


class AdherenceReport(BaseModel):
    generated_at: datetime
    filters: ReportFiltersRead
    thresholds: ThresholdsRead
    promise_working_days: int
    minutes_per_message: float
    cohort: GroupReport
    groups: list[GroupReport]
