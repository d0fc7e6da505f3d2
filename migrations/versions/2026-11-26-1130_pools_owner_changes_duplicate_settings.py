"""Pools (私海/公海): pools, each account's pool state, the owner-change history, duplicate settings

Revision ID: ed7da5286a1d
Revises: 7ab644007932
Create Date: 2026-11-26 10:29:03.895366
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "ed7da5286a1d"
down_revision: str | None = "7ab644007932"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("pools", "pool_accounts", "account_owner_changes", "pool_settings")


def upgrade() -> None:
    op.create_table(
        "pool_settings",
        sa.Column("duplicate_mode", sa.String(length=10), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_pool_settings_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_settings")),
    )
    with op.batch_alter_table("pool_settings", schema=None) as batch_op:
        batch_op.create_index("uq_pool_settings_org", ["organization_id"], unique=True)

    op.create_table(
        "pools",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "region_ids", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "admin_ids", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("follow_up_days", sa.Integer(), nullable=True),
        sa.Column("opportunity_days", sa.Integer(), nullable=True),
        sa.Column("deal_days", sa.Integer(), nullable=True),
        sa.Column("protection_days", sa.Integer(), nullable=True),
        sa.Column(
            "tier_rules", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("remind_days", sa.Integer(), nullable=True),
        sa.Column("exempt_won", sa.Boolean(), nullable=False),
        sa.Column("exempt_open_opportunities", sa.Boolean(), nullable=False),
        sa.Column("daily_claim_cap", sa.Integer(), nullable=True),
        sa.Column("holding_cap", sa.Integer(), nullable=True),
        sa.Column("lock_cap", sa.Integer(), nullable=True),
        sa.Column("cooldown_days", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_pools_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
    )
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.create_index("ix_pools_org_name", ["organization_id", "name"], unique=True)

    op.create_table(
        "account_owner_changes",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pool_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("to_owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("actor_label", sa.String(length=120), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("changed_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("batch", sa.String(length=36), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_owner_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_account_owner_changes_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_owner_id"],
            ["users.id"],
            name=op.f("fk_account_owner_changes_from_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_account_owner_changes_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_account_owner_changes_pool_id_pools"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["to_owner_id"], ["users.id"], name=op.f("fk_account_owner_changes_to_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_owner_changes")),
    )
    with op.batch_alter_table("account_owner_changes", schema=None) as batch_op:
        batch_op.create_index("ix_account_owner_changes_account", ["organization_id", "account_id", "id"], unique=False)
        batch_op.create_index("ix_account_owner_changes_batch", ["organization_id", "batch"], unique=False)
        batch_op.create_index(
            "ix_account_owner_changes_to", ["organization_id", "to_owner_id", "action", "changed_at"], unique=False
        )

    op.create_table(
        "pool_accounts",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owned_since", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_pool_accounts_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_pool_accounts_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_accounts")),
    )
    with op.batch_alter_table("pool_accounts", schema=None) as batch_op:
        batch_op.create_index("uq_pool_accounts_org_account", ["organization_id", "account_id"], unique=True)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("pool_accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_pool_accounts_org_account")

    op.drop_table("pool_accounts")
    with op.batch_alter_table("account_owner_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_account_owner_changes_to")
        batch_op.drop_index("ix_account_owner_changes_batch")
        batch_op.drop_index("ix_account_owner_changes_account")

    op.drop_table("account_owner_changes")
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.drop_index("ix_pools_org_name")

    op.drop_table("pools")
    with op.batch_alter_table("pool_settings", schema=None) as batch_op:
        batch_op.drop_index("uq_pool_settings_org")

    op.drop_table("pool_settings")
