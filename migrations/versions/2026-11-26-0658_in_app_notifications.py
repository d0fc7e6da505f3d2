"""In-app notifications: one message to one user, row-level secured

Revision ID: d8264f627c85
Revises: 0f39a1fe90a7
Create Date: 2026-11-26 06:58:07.166726
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import closeloop.db.types
from closeloop.db import security

revision: str = "d8264f627c85"
down_revision: str | None = "0f39a1fe90a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("notifications",)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("title_zh", sa.String(length=300), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=False),
        sa.Column("body_zh", sa.Text(), nullable=True),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("link", sa.String(length=300), nullable=True),
        sa.Column("source_key", sa.String(length=120), nullable=True),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notifications_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_recipient", ["organization_id", "user_id", "read_at", "id"], unique=False
        )
        batch_op.create_index("ix_notifications_source", ["organization_id", "user_id", "source_key"], unique=False)

    security.add_tenant_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_source")
        batch_op.drop_index("ix_notifications_recipient")

    op.drop_table("notifications")
