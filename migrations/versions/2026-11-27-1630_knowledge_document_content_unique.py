"""Knowledge documents: the same bytes once per collection, enforced by a unique index

``uq_knowledge_documents_content`` is unique on (organization_id, collection_id, sha256) over the
documents whose indexing has not failed (a failed copy may be uploaded again: that is how a failure
is retried). The service refuses a duplicate upload with a 409 before inserting; the index settles
two uploads that pass that check at the same moment.

Rows that already break the rule (two live copies of the same bytes in one collection, left by
such a race before this revision) are resolved first, without deleting anything an administrator
uploaded: the oldest copy (lowest id) is kept as it is; every later copy is marked ``failed`` with
the error "duplicate of document <oldest id> …", and its passages are removed (only ready
documents are searched, and a failed document holds no passage). Its bytes stay, so an
administrator sees it in the collection and may delete it. The downgrade drops the index only
(the copies marked failed stay failed).

Revision ID: 8e4b1d2c1630
Revises: 5a8c2e1f1420
Create Date: 2026-11-27 16:30:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e4b1d2c1630"
down_revision: str | None = "5a8c2e1f1420"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_knowledge_documents_content"
_LIVE = "status != 'failed'"

#: the later live copies: (their id, the id of the oldest live copy of the same bytes)
_LATER_COPIES = sa.text(
    "SELECT later.id, MIN(earlier.id) FROM knowledge_documents AS later "
    "JOIN knowledge_documents AS earlier ON earlier.organization_id = later.organization_id "
    "AND earlier.collection_id = later.collection_id AND earlier.sha256 = later.sha256 "
    "AND earlier.id < later.id AND earlier.status != 'failed' "
    "WHERE later.status != 'failed' GROUP BY later.id ORDER BY later.id"
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # the migration reads and writes every organization's rows (row security)
        bind.execute(sa.text("SELECT set_config('closeloop.system', 'on', true)"))
    for later_id, kept_id in bind.execute(_LATER_COPIES).all():
        chunk_ids = [
            row[0]
            for row in bind.execute(
                sa.text("SELECT id FROM knowledge_chunks WHERE document_id = :id"), {"id": later_id}
            )
        ]
        if chunk_ids and not postgres:  # SQLite's full-text table is keyed by the chunk id
            for start in range(0, len(chunk_ids), 500):
                bind.execute(
                    sa.text("DELETE FROM knowledge_fts WHERE rowid IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": chunk_ids[start : start + 500]},
                )
        bind.execute(sa.text("DELETE FROM knowledge_chunks WHERE document_id = :id"), {"id": later_id})
        # the collection's passages changed: a new key makes running processes rebuild their
        # in-memory indexes (vectors, full text) instead of keeping the removed passages
        bind.execute(
            sa.text(
                "UPDATE knowledge_collections SET index_key = :key WHERE id = "
                "(SELECT collection_id FROM knowledge_documents WHERE id = :id)"
            ),
            {"key": uuid.uuid4().hex, "id": later_id},
        )
        bind.execute(
            sa.text("UPDATE knowledge_documents SET status = 'failed', chunks_done = 0, error = :error WHERE id = :id"),
            {
                "id": later_id,
                "error": f"duplicate of document {kept_id} (the same bytes in this collection): "
                "marked failed by the upgrade that made copies unique; delete it",
            },
        )
    op.create_index(
        _INDEX,
        "knowledge_documents",
        ["organization_id", "collection_id", "sha256"],
        unique=True,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="knowledge_documents")
