"""programs questionnaires

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:01:39.726881
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('exercise_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('program', sa.String(length=32), nullable=False),
    sa.Column('module_key', sa.String(length=120), nullable=False),
    sa.Column('exercise_id', sa.String(length=80), nullable=False),
    sa.Column('exercise_type', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data_encrypted', sa.Text(), nullable=False),
    sa.Column('derived', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'submitted')", name=op.f('ck_exercise_response_status')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_exercise_response_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exercise_response')),
    sa.UniqueConstraint('enrollment_id', 'program', 'module_key', 'exercise_id', name=op.f('uq_exercise_response_enrollment_id_program_module_key_exercise_id'))
    )
    with op.batch_alter_table('exercise_response', schema=None) as batch_op:
        batch_op.create_index('ix_exercise_response_enrollment_status', ['enrollment_id', 'status'], unique=False)

    op.create_table('module_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('program', sa.String(length=32), nullable=False),
    sa.Column('module_key', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unlocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unlocked_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_page', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['user.id'], name=op.f('fk_module_progress_added_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_module_progress_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unlocked_by_id'], ['user.id'], name=op.f('fk_module_progress_unlocked_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_module_progress')),
    sa.UniqueConstraint('enrollment_id', 'program', 'module_key', name=op.f('uq_module_progress_enrollment_id_program_module_key'))
    )
    with op.batch_alter_table('module_progress', schema=None) as batch_op:
        batch_op.create_index('ix_module_progress_enrollment_position', ['enrollment_id', 'position'], unique=False)

    op.create_table('pacing_override',
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('therapist_gate', sa.Boolean(), nullable=True),
    sa.Column('min_days_between_modules', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_pacing_override_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_pacing_override_updated_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('enrollment_id', name=op.f('pk_pacing_override'))
    )
    op.create_table('questionnaire_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('instrument', sa.String(length=32), nullable=False),
    sa.Column('occasion', sa.String(length=16), nullable=False),
    sa.Column('week', sa.Integer(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('band', sa.String(length=64), nullable=False),
    sa.Column('subscales', sa.JSON(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("occasion IN ('baseline', 'weekly', 'end', 'extra')", name=op.f('ck_questionnaire_response_occasion')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_questionnaire_response_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_response'))
    )
    with op.batch_alter_table('questionnaire_response', schema=None) as batch_op:
        batch_op.create_index('ix_questionnaire_response_enrollment_code_at', ['enrollment_id', 'instrument', 'completed_at'], unique=False)

    op.create_table('risk_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('action_note_encrypted', sa.Text(), nullable=True),
    sa.CheckConstraint("level IN ('urgent', 'warning', 'info')", name=op.f('ck_risk_alert_level')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['user.id'], name=op.f('fk_risk_alert_acknowledged_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_risk_alert_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_alert'))
    )
    with op.batch_alter_table('risk_alert', schema=None) as batch_op:
        batch_op.create_index('ix_risk_alert_enrollment_ack', ['enrollment_id', 'acknowledged_at'], unique=False)

    op.create_table('tailoring_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reverted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_tailoring_change_actor_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_tailoring_change_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tailoring_change'))
    )
    with op.batch_alter_table('tailoring_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tailoring_change_enrollment_id'), ['enrollment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tailoring_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tailoring_change_enrollment_id'))

    op.drop_table('tailoring_change')
    with op.batch_alter_table('risk_alert', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_alert_enrollment_ack')

    op.drop_table('risk_alert')
    with op.batch_alter_table('questionnaire_response', schema=None) as batch_op:
        batch_op.drop_index('ix_questionnaire_response_enrollment_code_at')

    op.drop_table('questionnaire_response')
    op.drop_table('pacing_override')
    with op.batch_alter_table('module_progress', schema=None) as batch_op:
        batch_op.drop_index('ix_module_progress_enrollment_position')

    op.drop_table('module_progress')
    with op.batch_alter_table('exercise_response', schema=None) as batch_op:
        batch_op.drop_index('ix_exercise_response_enrollment_status')

    op.drop_table('exercise_response')
