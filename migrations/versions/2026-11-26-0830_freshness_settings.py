"""Freshness monitoring: per-feed silence limits (GOV-4), row-level secured

Revision ID: 6fdbf617b0a8
Revises: 4ea4f3ec2796
Create Date: 2026-11-26 07:14:40.170269
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import closeloop.db.types
from closeloop.db import security

revision: str = "6fdbf617b0a8"
down_revision: str | None = "4ea4f3ec2796"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("quality_freshness_settings",)


def upgrade() -> None:
    op.create_table(
        "quality_freshness_settings",
        sa.Column("feed", sa.String(length=110), nullable=False),
        sa.Column("factor", sa.Float(), nullable=True),
        sa.Column("max_silent_days", sa.Integer(), nullable=True),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quality_freshness_settings_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_freshness_settings")),
    )
    with op.batch_alter_table("quality_freshness_settings", schema=None) as batch_op:
        batch_op.create_index("uq_quality_freshness_settings_feed", ["organization_id", "feed"], unique=True)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("quality_freshness_settings", schema=None) as batch_op:
        batch_op.drop_index("uq_quality_freshness_settings_feed")

    op.drop_table("quality_freshness_settings")
