"""Inquiry signals (FC-4 signal rules) and stock reservations against dealers' stock

Revision ID: a3c9e0930d01
Revises: c4b9a189fcb1
Create Date: 2026-11-26 17:33:12.650128
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import closeloop.db.types
from closeloop.db import security

revision: str = "a3c9e0930d01"
down_revision: str | None = "c4b9a189fcb1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("inquiry_signals", "stock_reservations")


def upgrade() -> None:
    op.create_table(
        "inquiry_signals",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("keyword", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_inquiry_signals_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_inquiry_signals_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_signals")),
    )
    with op.batch_alter_table("inquiry_signals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inquiry_signals_org_account_keyword",
            ["organization_id", "account_id", "keyword", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "stock_reservations",
        sa.Column("dealer_stock_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("decision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_stock_reservations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dealer_stock_id"],
            ["dealer_stock.id"],
            name=op.f("fk_stock_reservations_dealer_stock_id_dealer_stock"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_stock_reservations_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_reservations_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_reservations")),
    )
    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stock_reservations_org_account", ["organization_id", "account_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_stock_reservations_org_stock", ["organization_id", "dealer_stock_id", "status"], unique=False
        )

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_reservations_org_stock")
        batch_op.drop_index("ix_stock_reservations_org_account")

    op.drop_table("stock_reservations")
    with op.batch_alter_table("inquiry_signals", schema=None) as batch_op:
        batch_op.drop_index("ix_inquiry_signals_org_account_keyword")

    op.drop_table("inquiry_signals")
