"""reminders: reminder rows, patient preferences, clinic rules, in-app notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:23:13.119697
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_rule_config',
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('inactivity_enabled', sa.Boolean(), nullable=False),
    sa.Column('inactivity_days_1', sa.Integer(), nullable=False),
    sa.Column('inactivity_days_2', sa.Integer(), nullable=False),
    sa.Column('inactivity_days_3', sa.Integer(), nullable=False),
    sa.Column('dropout_alert_enabled', sa.Boolean(), nullable=False),
    sa.Column('max_nudges_per_lapse', sa.Integer(), nullable=False),
    sa.Column('new_module_enabled', sa.Boolean(), nullable=False),
    sa.Column('new_module_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('questionnaire_enabled', sa.Boolean(), nullable=False),
    sa.Column('questionnaire_after_hours', sa.Integer(), nullable=False),
    sa.Column('unread_message_enabled', sa.Boolean(), nullable=False),
    sa.Column('unread_message_hours', sa.Integer(), nullable=False),
    sa.Column('program_time_enabled', sa.Boolean(), nullable=False),
    sa.Column('staff_reminders_enabled', sa.Boolean(), nullable=False),
    sa.Column('response_promise_hours', sa.Integer(), nullable=False),
    sa.Column('response_warning_hours', sa.Integer(), nullable=False),
    sa.Column('feedback_overdue_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_reminder_rule_config_clinic_id_clinic'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_reminder_rule_config_updated_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('clinic_id', name=op.f('pk_reminder_rule_config'))
    )
    op.create_table('reminder',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=64), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=True),
    sa.Column('recipient_user_id', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("audience IN ('patient', 'staff')", name=op.f('ck_reminder_audience')),
    sa.CheckConstraint("channel IN ('in_app', 'email', 'sms')", name=op.f('ck_reminder_channel')),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name=op.f('ck_reminder_status')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_reminder_clinic_id_clinic'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_reminder_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_user_id'], ['user.id'], name=op.f('fk_reminder_recipient_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_reminder_dedupe_key')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_reminder_token_hash'))
    )
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.create_index('ix_reminder_clinic_created_at', ['clinic_id', 'created_at'], unique=False)
        batch_op.create_index('ix_reminder_enrollment_rule', ['enrollment_id', 'rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_recipient_user_id'), ['recipient_user_id'], unique=False)
        batch_op.create_index('ix_reminder_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('reminder_preference',
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('email_enabled', sa.Boolean(), nullable=False),
    sa.Column('sms_enabled', sa.Boolean(), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('quiet_start', sa.Time(), nullable=True),
    sa.Column('quiet_end', sa.Time(), nullable=True),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('program_weekday', sa.Integer(), nullable=True),
    sa.Column('program_time', sa.Time(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('program_weekday BETWEEN 0 AND 6', name=op.f('ck_reminder_preference_program_weekday')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_reminder_preference_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('enrollment_id', name=op.f('pk_reminder_preference'))
    )
    op.create_table('notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reminder_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reminder_id'], ['reminder.id'], name=op.f('fk_notification_reminder_id_reminder'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_notification_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('reminder_id', name=op.f('uq_notification_reminder_id'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_user_read_at', ['user_id', 'read_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_read_at')

    op.drop_table('notification')
    op.drop_table('reminder_preference')
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_reminder_recipient_user_id'))
        batch_op.drop_index('ix_reminder_enrollment_rule')
        batch_op.drop_index('ix_reminder_clinic_created_at')

    op.drop_table('reminder')
    op.drop_table('reminder_rule_config')
