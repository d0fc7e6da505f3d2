"""Compliance scans, findings per activity and the review queue, row-level secured

Revision ID: 670fa2cdeb92
Revises: 5cac55952ed6
Create Date: 2026-11-26 10:38:56.121599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "670fa2cdeb92"
down_revision: str | None = "5cac55952ed6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("compliance_scans", "compliance_findings", "compliance_reviews")


def upgrade() -> None:
    op.create_table(
        "compliance_scans",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("since", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("requested_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("requested_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activities_checked", sa.Integer(), nullable=False),
        sa.Column("findings_stored", sa.Integer(), nullable=False),
        sa.Column("reviews_opened", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_compliance_scans_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_compliance_scans_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_scans")),
    )
    with op.batch_alter_table("compliance_scans", schema=None) as batch_op:
        batch_op.create_index("ix_compliance_scans_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "compliance_findings",
        sa.Column("activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("span", sa.Text(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("citation", sa.String(length=80), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("found_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_compliance_findings_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_compliance_findings_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["compliance_scans.id"],
            name=op.f("fk_compliance_findings_scan_id_compliance_scans"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_compliance_findings_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_findings")),
    )
    with op.batch_alter_table("compliance_findings", schema=None) as batch_op:
        batch_op.create_index("ix_compliance_findings_org_activity", ["organization_id", "activity_id"], unique=False)
        batch_op.create_index("ix_compliance_findings_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index("ix_compliance_findings_org_user", ["organization_id", "user_id", "id"], unique=False)

    op.create_table(
        "compliance_reviews",
        sa.Column("rep_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reviewer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("draft", sa.Text(), nullable=True),
        sa.Column(
            "findings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_compliance_reviews_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_compliance_reviews_decided_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_compliance_reviews_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["rep_id"], ["users.id"], name=op.f("fk_compliance_reviews_rep_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_compliance_reviews_reviewer_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_reviews")),
    )
    with op.batch_alter_table("compliance_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_compliance_reviews_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index("ix_compliance_reviews_org_rep", ["organization_id", "rep_id", "id"], unique=False)
        batch_op.create_index("ix_compliance_reviews_org_status", ["organization_id", "status", "id"], unique=False)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("compliance_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_reviews_org_status")
        batch_op.drop_index("ix_compliance_reviews_org_rep")
        batch_op.drop_index("ix_compliance_reviews_org_id")

    op.drop_table("compliance_reviews")
    with op.batch_alter_table("compliance_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_findings_org_user")
        batch_op.drop_index("ix_compliance_findings_org_id")
        batch_op.drop_index("ix_compliance_findings_org_activity")

    op.drop_table("compliance_findings")
    with op.batch_alter_table("compliance_scans", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_scans_org_id")

    op.drop_table("compliance_scans")
