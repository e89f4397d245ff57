"""inbox: messages, snippets (with the built-in defaults), absences

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:34:26.065271
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Built-in snippets (clinic_id NULL), shown to every clinic. Frozen here rather than imported,
# so this migration means the same thing whenever it runs.
_SEEDED_AT = datetime(2026, 11, 25, tzinfo=UTC)
DEFAULT_SNIPPETS = [
    ("autonomy", "Your own pace",
     "Hi {first_name}, there is no need to rush “{module_title}”. Go at the pace that suits "
     "your week, and tell me if you would like to spread it out."),
    ("autonomy", "Offering a choice",
     "{first_name}, you could start with the exercise or read the next pages first, whichever "
     "feels easier this week. You know best what fits."),
    ("autonomy", "Your own goal",
     "What would you most like to get out of “{module_title}”, {first_name}? Your own goal "
     "matters more than finishing everything."),
    ("autonomy", "Make the exercise yours",
     "If the exercise does not fit your life as it is written, change it so that it does. "
     "A smaller version that you actually try is worth more than a perfect one."),
    ("alliance", "Noticing effort",
     "Thank you, {first_name}. I read what you wrote, and I can see how much effort went "
     "into it."),
    ("alliance", "Welcome",
     "Welcome, {first_name}. I am {therapist_name} and I will be with you through this "
     "program. I read everything you send me and answer on working days."),
    ("alliance", "Remembering",
     "Last time you mentioned how hard this had been. How has it gone this week, {first_name}?"),
    ("alliance", "Still here",
     "I have not heard from you for a while, {first_name}, and I wanted to say I am still "
     "here. No pressure: a short line is enough, whenever you are ready."),
    ("emotion_regulation", "A setback is normal",
     "A harder week is a normal part of change, not a sign that it is not working. What "
     "helped, even a little?"),
    ("emotion_regulation", "Slowing down",
     "When things feel like too much, try a few slow breaths before deciding anything. "
     "The feeling will rise, and then it will ease."),
    ("emotion_regulation", "A kinder view",
     "You are being hard on yourself here, {first_name}. What would you say to a good "
     "friend who wrote this?"),
    ("emotion_regulation", "One small step",
     "It is okay to do only one small thing this week. A small step still counts, and we "
     "can build from there."),
]


def upgrade() -> None:
    op.create_table('absence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('covering_therapist_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_absence_ends_after_start')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_absence_clinic_id_clinic'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['covering_therapist_id'], ['user.id'], name=op.f('fk_absence_covering_therapist_id_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['therapist_id'], ['user.id'], name=op.f('fk_absence_therapist_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absence'))
    )
    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.create_index('ix_absence_covering_period', ['covering_therapist_id', 'starts_at', 'ends_at'], unique=False)
        batch_op.create_index('ix_absence_therapist_period', ['therapist_id', 'starts_at', 'ends_at'], unique=False)

    op.create_table('snippet',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('function', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("function IN ('autonomy', 'alliance', 'emotion_regulation')", name=op.f('ck_snippet_function')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_snippet_clinic_id_clinic'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_snippet_owner_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snippet'))
    )
    with op.batch_alter_table('snippet', schema=None) as batch_op:
        batch_op.create_index('ix_snippet_clinic_owner', ['clinic_id', 'owner_id'], unique=False)

    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('sender_role', sa.String(length=16), nullable=False),
    sa.Column('body_encrypted', sa.Text(), nullable=False),
    sa.Column('exercise_response_id', sa.Integer(), nullable=True),
    sa.Column('questionnaire_response_id', sa.Integer(), nullable=True),
    sa.Column('tag_autonomy', sa.Boolean(), nullable=False),
    sa.Column('tag_alliance', sa.Boolean(), nullable=False),
    sa.Column('tag_emotion_regulation', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("sender_role IN ('patient', 'therapist')", name=op.f('ck_message_sender_role')),
    sa.CheckConstraint('exercise_response_id IS NULL OR questionnaire_response_id IS NULL', name=op.f('ck_message_one_anchor')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_message_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['exercise_response_id'], ['exercise_response.id'], name=op.f('fk_message_exercise_response_id_exercise_response'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['questionnaire_response_id'], ['questionnaire_response.id'], name=op.f('fk_message_questionnaire_response_id_questionnaire_response'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['read_by_id'], ['user.id'], name=op.f('fk_message_read_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sender_id'], ['user.id'], name=op.f('fk_message_sender_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message'))
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_enrollment_created', ['enrollment_id', 'created_at'], unique=False)
        batch_op.create_index('ix_message_enrollment_sender_created', ['enrollment_id', 'sender_role', 'created_at'], unique=False)
        batch_op.create_index('ix_message_enrollment_sender_read', ['enrollment_id', 'sender_role', 'read_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_exercise_response_id'), ['exercise_response_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_questionnaire_response_id'), ['questionnaire_response_id'], unique=False)

    snippet = sa.table(
        'snippet',
        sa.column('clinic_id', sa.Integer()),
        sa.column('owner_id', sa.Integer()),
        sa.column('shared', sa.Boolean()),
        sa.column('function', sa.String()),
        sa.column('title', sa.String()),
        sa.column('body', sa.Text()),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('updated_at', sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        snippet,
        [
            {
                'clinic_id': None,
                'owner_id': None,
                'shared': True,
                'function': function,
                'title': title,
                'body': body,
                'created_at': _SEEDED_AT,
                'updated_at': _SEEDED_AT,
            }
            for function, title, body in DEFAULT_SNIPPETS
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_questionnaire_response_id'))
        batch_op.drop_index(batch_op.f('ix_message_exercise_response_id'))
        batch_op.drop_index('ix_message_enrollment_sender_read')
        batch_op.drop_index('ix_message_enrollment_sender_created')
        batch_op.drop_index('ix_message_enrollment_created')

    op.drop_table('message')
    with op.batch_alter_table('snippet', schema=None) as batch_op:
        batch_op.drop_index('ix_snippet_clinic_owner')

    op.drop_table('snippet')
    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.drop_index('ix_absence_therapist_period')
        batch_op.drop_index('ix_absence_covering_period')

    op.drop_table('absence')
