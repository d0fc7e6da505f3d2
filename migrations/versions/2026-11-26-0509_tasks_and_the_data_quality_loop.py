"""tasks, and the data-quality loop's defects, scans, KPI snapshots and name keys (row-level secured)

Revision ID: 4fce21fdfba9
Revises: e205d98cccfb
Create Date: 2026-11-26 04:35:28.822007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "4fce21fdfba9"
down_revision: str | None = "e205d98cccfb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("tasks", "quality_defects", "quality_scans", "quality_kpi_snapshots", "quality_name_keys")


def upgrade() -> None:
    op.create_table(
        "quality_name_keys",
        sa.Column("subject_type", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("sound_key", sa.String(length=400), nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quality_name_keys_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("subject_type", "subject_id", name=op.f("pk_quality_name_keys")),
    )
    with op.batch_alter_table("quality_name_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_name_keys_org_name", ["organization_id", "subject_type", "name_key"], unique=False
        )
        batch_op.create_index(
            "ix_quality_name_keys_org_sound", ["organization_id", "subject_type", "sound_key"], unique=False
        )

    op.create_table(
        "quality_scans",
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("requested_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("since", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("watermark", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quality_scans_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_quality_scans_requested_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_scans")),
    )
    with op.batch_alter_table("quality_scans", schema=None) as batch_op:
        batch_op.create_index("ix_quality_scans_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("subject_type", sa.String(length=40), nullable=True),
        sa.Column("subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("link", sa.String(length=300), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("closed_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["users.id"], name=op.f("fk_tasks_closed_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_tasks_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_tasks_owner_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_org_due_on", ["organization_id", "due_on", "id"], unique=False)
        batch_op.create_index("ix_tasks_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_org_owner_id", ["organization_id", "owner_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_org_status", ["organization_id", "status", "id"], unique=False)
        batch_op.create_index("ix_tasks_org_subject", ["organization_id", "subject_type", "subject_id"], unique=False)

    op.create_table(
        "quality_defects",
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("subject_type", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("first_seen", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quality_defects_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_quality_defects_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_quality_defects_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_defects")),
    )
    with op.batch_alter_table("quality_defects", schema=None) as batch_op:
        batch_op.create_index("ix_quality_defects_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index("ix_quality_defects_org_owner", ["organization_id", "owner_id", "id"], unique=False)
        batch_op.create_index(
            "ix_quality_defects_org_subject", ["organization_id", "subject_type", "subject_id"], unique=False
        )
        batch_op.create_index(
            "uq_quality_defects_open",
            ["organization_id", "rule", "subject_type", "subject_id"],
            unique=True,
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )

    op.create_table(
        "quality_kpi_snapshots",
        sa.Column("scan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("taken_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("group_by", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quality_kpi_snapshots_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["quality_scans.id"],
            name=op.f("fk_quality_kpi_snapshots_scan_id_quality_scans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_kpi_snapshots")),
    )
    with op.batch_alter_table("quality_kpi_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_kpi_snapshots_org_group", ["organization_id", "group_by", "group_id", "taken_at"], unique=False
        )

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("quality_kpi_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_kpi_snapshots_org_group")

    op.drop_table("quality_kpi_snapshots")
    with op.batch_alter_table("quality_defects", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_quality_defects_open",
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )
        batch_op.drop_index("ix_quality_defects_org_subject")
        batch_op.drop_index("ix_quality_defects_org_owner")
        batch_op.drop_index("ix_quality_defects_org_id")

    op.drop_table("quality_defects")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_org_subject")
        batch_op.drop_index("ix_tasks_org_status")
        batch_op.drop_index("ix_tasks_org_owner_id")
        batch_op.drop_index("ix_tasks_org_id")
        batch_op.drop_index("ix_tasks_org_due_on")

    op.drop_table("tasks")
    with op.batch_alter_table("quality_scans", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_scans_org_id")

    op.drop_table("quality_scans")
    with op.batch_alter_table("quality_name_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_name_keys_org_sound")
        batch_op.drop_index("ix_quality_name_keys_org_name")

    op.drop_table("quality_name_keys")
