"""adherence: richer per-enrollment rollup, answered support waits, clinic status thresholds

After upgrading a database that already has events, run `tuki adherence rebuild` once so the
new rollup counters are filled from the log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:43:18.668429
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('adherence_threshold',
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('falling_behind_days', sa.Integer(), nullable=False),
    sa.Column('inactive_days', sa.Integer(), nullable=False),
    sa.Column('dropout_days', sa.Integer(), nullable=False),
    sa.Column('pace_slack_modules', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('falling_behind_days < inactive_days AND inactive_days < dropout_days', name=op.f('ck_adherence_threshold_ordered')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_adherence_threshold_clinic_id_clinic'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_adherence_threshold_updated_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('clinic_id', name=op.f('pk_adherence_threshold'))
    )
    op.create_table('support_wait',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("kind IN ('reply', 'feedback')", name=op.f('ck_support_wait_kind')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_support_wait_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_wait')),
    sa.UniqueConstraint('event_id', 'kind', name=op.f('uq_support_wait_event_id_kind'))
    )
    with op.batch_alter_table('support_wait', schema=None) as batch_op:
        batch_op.create_index('ix_support_wait_enrollment_kind', ['enrollment_id', 'kind'], unique=False)

    with op.batch_alter_table('enrollment_rollup', schema=None) as batch_op:
        batch_op.alter_column('event_count', existing_type=sa.Integer(), server_default='0')
        batch_op.alter_column('login_count', existing_type=sa.Integer(), server_default='0')
        batch_op.add_column(sa.Column('modules_completed', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_module_completed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('exercises_submitted', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('questionnaires_completed', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_questionnaire_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('messages_from_patient', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('messages_to_patient', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_patient_message_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_therapist_message_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('gestures_autonomy', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('gestures_alliance', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('gestures_emotion_regulation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reminders_sent', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reminders_opened', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('alerts_raised', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('awaiting_reply_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('awaiting_feedback_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('enrollment_rollup', schema=None) as batch_op:
        batch_op.drop_column('awaiting_feedback_since')
        batch_op.drop_column('awaiting_reply_since')
        batch_op.drop_column('alerts_raised')
        batch_op.drop_column('reminders_opened')
        batch_op.drop_column('reminders_sent')
        batch_op.drop_column('gestures_emotion_regulation')
        batch_op.drop_column('gestures_alliance')
        batch_op.drop_column('gestures_autonomy')
        batch_op.drop_column('last_therapist_message_at')
        batch_op.drop_column('last_patient_message_at')
        batch_op.drop_column('messages_to_patient')
        batch_op.drop_column('messages_from_patient')
        batch_op.drop_column('last_questionnaire_at')
        batch_op.drop_column('questionnaires_completed')
        batch_op.drop_column('exercises_submitted')
        batch_op.drop_column('last_module_completed_at')
        batch_op.drop_column('modules_completed')
        batch_op.alter_column('login_count', existing_type=sa.Integer(), server_default=None)
        batch_op.alter_column('event_count', existing_type=sa.Integer(), server_default=None)

    with op.batch_alter_table('support_wait', schema=None) as batch_op:
        batch_op.drop_index('ix_support_wait_enrollment_kind')

    op.drop_table('support_wait')
    op.drop_table('adherence_threshold')
