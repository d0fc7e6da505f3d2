"""Knowledge collections shared with partner organizations: row-security policies (PostgreSQL)

A seller's knowledge manager shares a collection with one of its partner organizations through a
``partner`` access rule (``knowledge_access_rules``: kind ``partner``, value the partner's id). The
tenant wall keeps a partner's session out of the seller's rows; these policies open, for reading
only, exactly the rows of collections shared with the session's organization — and let a seller
read the names of its own partner organizations. SQLite has no row security: the application's
queries (``knowledge.service``) are the only wall there, as for every table.

Revision ID: 3c1f0a9e0940
Revises: a3c9e0930d01
Create Date: 2026-11-26 17:30:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "3c1f0a9e0940"
down_revision: str | None = "a3c9e0930d01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORG_TEXT = "current_setting('closeloop.organization_id', true)"
_ORG = f"NULLIF({_ORG_TEXT}, '')::bigint"


#: table → the rows of it whose collection is shared with the session's organization (written out)
_SHARED_TABLES = {
    "knowledge_collections": "EXISTS (SELECT 1 FROM knowledge_access_rules AS share "
    "WHERE share.collection_id = knowledge_collections.id AND share.kind = 'partner' "
    "AND share.value = current_setting('closeloop.organization_id', true))",
    "knowledge_documents": "EXISTS (SELECT 1 FROM knowledge_access_rules AS share "
    "WHERE share.collection_id = knowledge_documents.collection_id AND share.kind = 'partner' "
    "AND share.value = current_setting('closeloop.organization_id', true))",
    "knowledge_chunks": "EXISTS (SELECT 1 FROM knowledge_access_rules AS share "
    "WHERE share.collection_id = knowledge_chunks.collection_id AND share.kind = 'partner' "
    "AND share.value = current_setting('closeloop.organization_id', true))",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # the partner's own session reads the rules naming it (and nothing else of the seller's rules)
    bind.execute(
        text(
            "CREATE POLICY partner_share ON knowledge_access_rules FOR SELECT "
            f"USING (kind = 'partner' AND value = {_ORG_TEXT})"
        )
    )
    for table, condition in _SHARED_TABLES.items():
        bind.execute(text(f"CREATE POLICY partner_share ON {table} FOR SELECT USING ({condition})"))
    # a seller reads its partner organizations (to name the ones it shares with)
    bind.execute(text(f"CREATE POLICY partner_link ON organizations FOR SELECT USING (partner_of_id = {_ORG})"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.execute(text("DROP POLICY IF EXISTS partner_link ON organizations"))
    for table in (*_SHARED_TABLES, "knowledge_access_rules"):
        bind.execute(text(f"DROP POLICY IF EXISTS partner_share ON {table}"))
