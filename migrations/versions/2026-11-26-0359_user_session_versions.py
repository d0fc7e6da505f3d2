"""User session versions: a password, role or activation change ends earlier browser sessions.

Revision ID: c2d484136847
Revises: fcbacd6c6d22
Create Date: 2026-11-26 03:59:04.388308
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c2d484136847"
down_revision: str | None = "fcbacd6c6d22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
