"""Knowledge base: collections with access rules, documents, chunks with tokens and embeddings;
the FTS5 table on SQLite, a GIN-indexed tsvector on PostgreSQL; row-level secured

Revision ID: 7ab644007932
Revises: 6379cd21cd11
Create Date: 2026-11-26 10:30:48.776109
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import closeloop.db.types
from closeloop.db import security

revision: str = "7ab644007932"
down_revision: str | None = "6379cd21cd11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("knowledge_collections", "knowledge_access_rules", "knowledge_documents", "knowledge_chunks")


def upgrade() -> None:
    op.create_table(
        "knowledge_collections",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("index_key", sa.String(length=32), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_knowledge_collections_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_knowledge_collections_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_collections")),
        sa.UniqueConstraint("organization_id", "name", name="uq_knowledge_collections_org_name"),
    )
    with op.batch_alter_table("knowledge_collections", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_collections_org_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "knowledge_access_rules",
        sa.Column("collection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["knowledge_collections.id"],
            name=op.f("fk_knowledge_access_rules_collection_id_knowledge_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_knowledge_access_rules_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_access_rules")),
        sa.UniqueConstraint("collection_id", "kind", "value", name="uq_knowledge_access_rules_rule"),
    )
    with op.batch_alter_table("knowledge_access_rules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_knowledge_access_rules_org_collection", ["organization_id", "collection_id"], unique=False
        )

    op.create_table(
        "knowledge_documents",
        sa.Column("collection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("chunks_total", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("uploaded_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("uploaded_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("indexed_at", closeloop.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["knowledge_collections.id"],
            name=op.f("fk_knowledge_documents_collection_id_knowledge_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_knowledge_documents_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_knowledge_documents_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
    )
    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_knowledge_documents_org_collection", ["organization_id", "collection_id", "id"], unique=False
        )

    op.create_table(
        "knowledge_chunks",
        sa.Column("collection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("search_vector", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["knowledge_collections.id"],
            name=op.f("fk_knowledge_chunks_collection_id_knowledge_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_knowledge_chunks_document_id_knowledge_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_knowledge_chunks_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
    )
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_chunks_document", ["document_id", "ordinal"], unique=False)
        batch_op.create_index(
            "ix_knowledge_chunks_org_collection", ["organization_id", "collection_id", "id"], unique=False
        )
        batch_op.create_index("ix_knowledge_chunks_search", ["search_vector"], unique=False, postgresql_using="gin")

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # the full-text index of the chunks' jieba tokens (rowid = chunk id); PostgreSQL uses search_vector
        op.execute("CREATE VIRTUAL TABLE knowledge_fts USING fts5(tokens, tokenize='unicode61')")
    security.add_tenant_tables(bind, TABLES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_chunks_search", postgresql_using="gin")
        batch_op.drop_index("ix_knowledge_chunks_org_collection")
        batch_op.drop_index("ix_knowledge_chunks_document")

    op.drop_table("knowledge_chunks")
    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_documents_org_collection")

    op.drop_table("knowledge_documents")
    with op.batch_alter_table("knowledge_access_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_access_rules_org_collection")

    op.drop_table("knowledge_access_rules")
    with op.batch_alter_table("knowledge_collections", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_collections_org_id")

    op.drop_table("knowledge_collections")
