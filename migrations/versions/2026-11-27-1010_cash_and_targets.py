"""Lead to cash (collection instalments, collections, invoices) and targets

Revision ID: 4f5130e21b97
Revises: d01d68f1d250
Create Date: 2026-11-26 14:01:30.875561
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import closeloop.db.types
from closeloop.db import security

revision: str = "4f5130e21b97"
down_revision: str | None = "d01d68f1d250"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("collection_instalments", "collections", "invoices", "targets")


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("subject_key", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_targets_department_id_departments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_targets_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_targets_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_targets")),
    )
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.create_index("ix_targets_period", ["organization_id", "year", "month"], unique=False)
        batch_op.create_index(
            "uq_targets_subject_period", ["organization_id", "subject_key", "metric", "year", "month"], unique=True
        )

    op.create_table(
        "collection_instalments",
        sa.Column("contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("amount", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("remind_days", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("is_void", sa.Boolean(), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("reminded_on", sa.Date(), nullable=True),
        sa.Column("alerted_on", sa.Date(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_collection_instalments_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_collection_instalments_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_instalments")),
    )
    with op.batch_alter_table("collection_instalments", schema=None) as batch_op:
        batch_op.create_index("ix_collection_instalments_due", ["organization_id", "due_on"], unique=False)
        batch_op.create_index(
            "uq_collection_instalments_contract_number", ["organization_id", "contract_id", "number"], unique=True
        )

    op.create_table(
        "invoices",
        sa.Column("contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("amount", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("title_name", sa.String(length=200), nullable=False),
        sa.Column("tax_id", sa.String(length=20), nullable=False),
        sa.Column("bank_name", sa.String(length=100), nullable=True),
        sa.Column("bank_account", sa.String(length=40), nullable=True),
        sa.Column("address_phone", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_invoices_contract_id_contracts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invoices_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_contract", ["organization_id", "contract_id"], unique=False)

    op.create_table(
        "collections",
        sa.Column("contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instalment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount", closeloop.db.types.ScaledDecimal(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("recorded_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("decided_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("decided_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=300), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_collections_contract_id_contracts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_collections_decided_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["instalment_id"],
            ["collection_instalments.id"],
            name=op.f("fk_collections_instalment_id_collection_instalments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_collections_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_collections_recorded_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index("ix_collections_contract", ["organization_id", "contract_id", "status"], unique=False)
        batch_op.create_index("ix_collections_instalment", ["organization_id", "instalment_id", "status"], unique=False)
        batch_op.create_index("ix_collections_received", ["organization_id", "status", "received_on"], unique=False)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_index("ix_collections_received")
        batch_op.drop_index("ix_collections_instalment")
        batch_op.drop_index("ix_collections_contract")

    op.drop_table("collections")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_contract")

    op.drop_table("invoices")
    with op.batch_alter_table("collection_instalments", schema=None) as batch_op:
        batch_op.drop_index("uq_collection_instalments_contract_number")
        batch_op.drop_index("ix_collection_instalments_due")

    op.drop_table("collection_instalments")
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_index("uq_targets_subject_period")
        batch_op.drop_index("ix_targets_period")

    op.drop_table("targets")
