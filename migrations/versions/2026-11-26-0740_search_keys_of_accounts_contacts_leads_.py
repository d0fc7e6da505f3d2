"""Search keys (characters, pinyin, initials) of accounts, contacts, leads and opportunities

Revision ID: 20c9fbfec59f
Revises: 366415a7b5fd
Create Date: 2026-11-26 07:17:37.133986
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from closeloop.crm.searchkey import search_key

revision: str = "20c9fbfec59f"
down_revision: str | None = "366415a7b5fd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table → the columns its key is made of
TABLES = {
    "accounts": ("name",),
    "contacts": ("name",),
    "leads": ("name", "company"),
    "opportunities": ("name",),
}
BATCH = 2000


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("search_key", sa.String(length=1000), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('closeloop.system', 'on', true)"))
    for table, columns in TABLES.items():
        source = sa.table(table, sa.column("id"), sa.column("search_key"), *(sa.column(name) for name in columns))
        change = sa.update(source).where(source.c.id == sa.bindparam("row_id")).values(search_key=sa.bindparam("key"))
        last = 0
        while True:
            rows = bind.execute(
                sa.select(source.c.id, *(source.c[name] for name in columns))
                .where(source.c.id > last)
                .order_by(source.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            bind.execute(change, [{"row_id": row[0], "key": search_key(*row[1:])} for row in rows])
            last = rows[-1][0]


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("search_key")
