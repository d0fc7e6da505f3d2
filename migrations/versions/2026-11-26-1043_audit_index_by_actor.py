"""Audit entries indexed by who made them (the home page's "records I touched recently").

Revision ID: 5cac55952ed6
Revises: 6fdbf617b0a8
Create Date: 2026-11-26 10:43:58.419799
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5cac55952ed6"
down_revision: str | None = "6fdbf617b0a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_org_actor_occurred",
        "audit_entries",
        ["organization_id", "actor_user_id", "occurred_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_org_actor_occurred", table_name="audit_entries")
