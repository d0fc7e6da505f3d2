"""Alert thresholds set on dashboard charts, one person's each, row-level secured

Revision ID: 4ea4f3ec2796
Revises: 20c9fbfec59f
Create Date: 2026-11-26 07:15:37.488481
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "4ea4f3ec2796"
down_revision: str | None = "20c9fbfec59f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("alert_thresholds",)


def upgrade() -> None:
    op.create_table(
        "alert_thresholds",
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dashboard", sa.String(length=40), nullable=False),
        sa.Column("metric", sa.String(length=60), nullable=False),
        sa.Column(
            "scope", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("value", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_value", closeloop.db.types.ScaledDecimal(), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_alert_thresholds_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_alert_thresholds_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_thresholds")),
    )
    with op.batch_alter_table("alert_thresholds", schema=None) as batch_op:
        batch_op.create_index("ix_alert_thresholds_org_owner", ["organization_id", "owner_id", "id"], unique=False)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("alert_thresholds", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_thresholds_org_owner")

    op.drop_table("alert_thresholds")
