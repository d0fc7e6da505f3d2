"""Check-ins say where their coordinates came from

``visit_check_ins.source`` is ``device`` (the phone's geolocation, with its accuracy) or ``manual``
(typed in by the rep: shown to the manager as entered by hand, with no accuracy). Existing
check-ins came through the form that the browser filled in, so they are ``device``.

Revision ID: 5a8c2e1f1420
Revises: 7d2e4b0a0347
Create Date: 2026-11-27 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a8c2e1f1420"
down_revision: str | None = "7d2e4b0a0347"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("visit_check_ins", sa.Column("source", sa.String(8), nullable=False, server_default="device"))


def downgrade() -> None:
    with op.batch_alter_table("visit_check_ins") as batch:
        batch.drop_column("source")
