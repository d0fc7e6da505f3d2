"""Win-probability models, one per organization, row-level secured

Revision ID: e4f20ae69d1b
Revises: ed7da5286a1d
Create Date: 2026-11-26 11:07:51.534070
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "e4f20ae69d1b"
down_revision: str | None = "ed7da5286a1d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("win_probability_models",)


def upgrade() -> None:
    op.create_table(
        "win_probability_models",
        sa.Column("trained_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_deals", sa.Integer(), nullable=False),
        sa.Column("won_deals", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_win_probability_models_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_win_probability_models")),
    )
    with op.batch_alter_table("win_probability_models", schema=None) as batch_op:
        batch_op.create_index("uq_win_probability_models_org", ["organization_id"], unique=True)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("win_probability_models", schema=None) as batch_op:
        batch_op.drop_index("uq_win_probability_models_org")

    op.drop_table("win_probability_models")
