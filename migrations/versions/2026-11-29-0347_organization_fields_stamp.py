"""Organizations carry a stamp of their field configuration

``organizations.fields_stamp`` is replaced by every write to the organization's field masks
(``field_security_rules``) or custom-field definitions; each process keeps the configuration it
read under a stamp and reads it again when the stamp changes (``closeloop.governance.fieldstamp``).
Existing organizations get a random stamp each.

Revision ID: 7d2e4b0a0347
Revises: 3c1f0a9e0940
Create Date: 2026-11-27 03:47:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2e4b0a0347"
down_revision: str | None = "3c1f0a9e0940"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("fields_stamp", sa.String(32), nullable=False, server_default="0"))
    bind = op.get_bind()
    # a random stamp per organization (never one a process could have kept from another database)
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('closeloop.system', 'on', true)"))
        bind.execute(sa.text("UPDATE organizations SET fields_stamp = substr(md5(random()::text || id::text), 1, 16)"))
    else:
        bind.execute(sa.text("UPDATE organizations SET fields_stamp = lower(hex(randomblob(8)))"))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("fields_stamp")
