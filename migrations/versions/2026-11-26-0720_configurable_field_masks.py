"""Field masks configurable per organization (GOV-3 complete), row-level secured

Revision ID: 366415a7b5fd
Revises: 2696db78f3ad
Create Date: 2026-11-26 06:57:07.704795
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import closeloop.db.types
from closeloop.db import security

revision: str = "366415a7b5fd"
down_revision: str | None = "2696db78f3ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("field_security_rules",)


def upgrade() -> None:
    op.create_table(
        "field_security_rules",
        sa.Column("record_type", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("can_read", sa.Boolean(), nullable=False),
        sa.Column("can_edit", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_field_security_rules_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_security_rules")),
        sa.UniqueConstraint(
            "organization_id",
            "record_type",
            "field",
            "role",
            name=op.f("uq_field_security_rules_organization_id_record_type_field_role"),
        ),
    )
    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    op.drop_table("field_security_rules")
