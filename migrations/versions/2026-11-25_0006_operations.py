"""operations: optional user language, clinic data retention period, pseudonymisation marker

`user.language` becomes nullable: NULL means "follow the browser's Accept-Language";
existing rows keep the value they had.

`clinic.retention_days` is NULL for every existing clinic: nothing is pseudonymised until a
clinic admin chooses a period (365..36500 days). `enrollment.pseudonymised_at` records when
the retention job replaced the enrollment's personal data.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 19:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('language', existing_type=sa.String(length=8), nullable=True)

    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_clinic_retention_days'),
            'retention_days IS NULL OR (retention_days >= 365 AND retention_days <= 36500)',
        )

    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pseudonymised_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.drop_column('pseudonymised_at')

    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_clinic_retention_days'), type_='check')
        batch_op.drop_column('retention_days')

    op.execute("UPDATE \"user\" SET language = 'en' WHERE language IS NULL")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('language', existing_type=sa.String(length=8), nullable=False)
