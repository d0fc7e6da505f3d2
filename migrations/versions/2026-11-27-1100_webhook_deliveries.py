"""Outgoing webhook deliveries (at least once, with retries and a delivery log), row-level secured

Revision ID: de5883fa4803
Revises: e2bf8ee3f858
Create Date: 2026-11-26 14:03:13.380178
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "de5883fa4803"
down_revision: str | None = "e2bf8ee3f858"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("automation_webhook_deliveries",)


def upgrade() -> None:
    op.create_table(
        "automation_webhook_deliveries",
        sa.Column("pending_action_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("decision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column(
            "body", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["automation_decisions.id"],
            name=op.f("fk_automation_webhook_deliveries_decision_id_automation_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_automation_webhook_deliveries_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pending_action_id"],
            ["automation_pending_actions.id"],
            name=op.f("fk_automation_webhook_deliveries_pending_action_id_automation_pending_actions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["automation_rules.id"],
            name=op.f("fk_automation_webhook_deliveries_rule_id_automation_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_webhook_deliveries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_automation_webhook_deliveries_idempotency_key")),
        sa.UniqueConstraint("pending_action_id", name=op.f("uq_automation_webhook_deliveries_pending_action_id")),
    )
    with op.batch_alter_table("automation_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_automation_webhook_deliveries_due", ["status", "next_attempt_at", "id"], unique=False)
        batch_op.create_index("ix_automation_webhook_deliveries_org", ["organization_id", "id"], unique=False)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("automation_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_automation_webhook_deliveries_org")
        batch_op.drop_index("ix_automation_webhook_deliveries_due")

    op.drop_table("automation_webhook_deliveries")
