"""Bookings forecast snapshots (rows per period and dimension, the deals as they stood) and dealer stock, row-level secured

Revision ID: d372b63f913a
Revises: 5917c9de3267
Create Date: 2026-11-26 14:18:40.728467
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "d372b63f913a"
down_revision: str | None = "5917c9de3267"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "bookings_snapshots",
    "bookings_forecast_rows",
    "bookings_snapshot_deals",
    "dealer_stock",
)


def upgrade() -> None:
    op.create_table(
        "bookings_snapshots",
        sa.Column("taken_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("simulations", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bookings_snapshots_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings_snapshots")),
    )
    with op.batch_alter_table("bookings_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_snapshots_org_taken", ["organization_id", "taken_at"], unique=False)

    op.create_table(
        "bookings_forecast_rows",
        sa.Column("snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("granularity", sa.String(length=10), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("won_to_date", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("expected", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("low", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("high", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("run_rate", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("commit", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("best_case", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("pipeline", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("open_deals", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bookings_forecast_rows_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["bookings_snapshots.id"],
            name=op.f("fk_bookings_forecast_rows_snapshot_id_bookings_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings_forecast_rows")),
    )
    with op.batch_alter_table("bookings_forecast_rows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bookings_forecast_rows_snapshot",
            ["organization_id", "snapshot_id", "dimension", "period"],
            unique=False,
        )

    op.create_table(
        "bookings_snapshot_deals",
        sa.Column("snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("opportunity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("region_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("product_line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("amount", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("expected_close_date", sa.Date(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bookings_snapshot_deals_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["bookings_snapshots.id"],
            name=op.f("fk_bookings_snapshot_deals_snapshot_id_bookings_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings_snapshot_deals")),
    )
    with op.batch_alter_table("bookings_snapshot_deals", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_snapshot_deals_snapshot", ["organization_id", "snapshot_id"], unique=False)

    op.create_table(
        "dealer_stock",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("on_hand", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("on_order", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=True),
        sa.Column("reported_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_dealer_stock_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_dealer_stock_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_dealer_stock_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dealer_stock")),
    )
    with op.batch_alter_table("dealer_stock", schema=None) as batch_op:
        batch_op.create_index(
            "uq_dealer_stock_org_account_product", ["organization_id", "account_id", "product_id"], unique=True
        )

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("dealer_stock", schema=None) as batch_op:
        batch_op.drop_index("uq_dealer_stock_org_account_product")

    op.drop_table("dealer_stock")
    with op.batch_alter_table("bookings_snapshot_deals", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_snapshot_deals_snapshot")

    op.drop_table("bookings_snapshot_deals")
    with op.batch_alter_table("bookings_forecast_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_forecast_rows_snapshot")

    op.drop_table("bookings_forecast_rows")
    with op.batch_alter_table("bookings_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_snapshots_org_taken")

    op.drop_table("bookings_snapshots")
