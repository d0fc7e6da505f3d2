"""Formula fields (GOV-2): a custom field may be computed from a formula

Revision ID: 0f39a1fe90a7
Revises: 4fce21fdfba9
Create Date: 2026-11-26 05:35:16.012246
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0f39a1fe90a7"
down_revision: str | None = "4fce21fdfba9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custom_field_definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("formula", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("custom_field_definitions", schema=None) as batch_op:
        batch_op.drop_column("formula")
