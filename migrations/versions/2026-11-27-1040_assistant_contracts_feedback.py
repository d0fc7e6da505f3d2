"""Assistants: contract templates (AST-4), suggestion verdicts and weekly adoption reports (AST-5),
assistant workflows and their runs (AST-6),
row-level secured

Revision ID: e2bf8ee3f858
Revises: d372b63f913a
Create Date: 2026-11-27 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "e2bf8ee3f858"
down_revision: str | None = "d372b63f913a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "contract_templates",
    "suggestion_verdicts",
    "adoption_reports",
    "assistant_workflows",
    "assistant_workflow_runs",
)


def upgrade() -> None:
    op.create_table(
        "adoption_reports",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column(
            "body", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("computed_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_adoption_reports_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adoption_reports")),
        sa.UniqueConstraint("organization_id", "week_start", name="uq_adoption_reports_org_week"),
    )
    with op.batch_alter_table("adoption_reports", schema=None) as batch_op:
        batch_op.create_index("ix_adoption_reports_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "contract_templates",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_contract_templates_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_contract_templates_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_templates")),
        sa.UniqueConstraint("organization_id", "name", name="uq_contract_templates_org_name"),
    )
    with op.batch_alter_table("contract_templates", schema=None) as batch_op:
        batch_op.create_index("ix_contract_templates_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "suggestion_verdicts",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("chunk_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"],
            ["knowledge_chunks.id"],
            name=op.f("fk_suggestion_verdicts_chunk_id_knowledge_chunks"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_suggestion_verdicts_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_suggestion_verdicts_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suggestion_verdicts")),
    )
    with op.batch_alter_table("suggestion_verdicts", schema=None) as batch_op:
        batch_op.create_index("ix_suggestion_verdicts_org_chunk", ["organization_id", "chunk_id"], unique=False)
        batch_op.create_index("ix_suggestion_verdicts_org_decided", ["organization_id", "decided_at"], unique=False)
        batch_op.create_index("ix_suggestion_verdicts_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "assistant_workflows",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column(
            "definition", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_assistant_workflows_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_workflows")),
        sa.UniqueConstraint("organization_id", "name", name="uq_assistant_workflows_org_name"),
    )
    with op.batch_alter_table("assistant_workflows", schema=None) as batch_op:
        batch_op.create_index("ix_assistant_workflows_org_event", ["organization_id", "event_type"], unique=False)

    op.create_table(
        "assistant_workflow_runs",
        sa.Column("workflow_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject_type", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("ran_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_assistant_workflow_runs_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_assistant_workflow_runs_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["assistant_workflows.id"],
            name=op.f("fk_assistant_workflow_runs_workflow_id_assistant_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_workflow_runs")),
        sa.UniqueConstraint("workflow_id", "event_id", name="uq_assistant_workflow_runs_event"),
    )
    with op.batch_alter_table("assistant_workflow_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assistant_workflow_runs_org_workflow", ["organization_id", "workflow_id", "id"], unique=False
        )

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    security.drop_walls(op.get_bind(), TABLES)
    with op.batch_alter_table("assistant_workflow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_workflow_runs_org_workflow")

    op.drop_table("assistant_workflow_runs")
    with op.batch_alter_table("assistant_workflows", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_workflows_org_event")

    op.drop_table("assistant_workflows")

    with op.batch_alter_table("suggestion_verdicts", schema=None) as batch_op:
        batch_op.drop_index("ix_suggestion_verdicts_org_id")
        batch_op.drop_index("ix_suggestion_verdicts_org_decided")
        batch_op.drop_index("ix_suggestion_verdicts_org_chunk")

    op.drop_table("suggestion_verdicts")
    with op.batch_alter_table("contract_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_templates_org_id")

    op.drop_table("contract_templates")
    with op.batch_alter_table("adoption_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_adoption_reports_org_id")

    op.drop_table("adoption_reports")
