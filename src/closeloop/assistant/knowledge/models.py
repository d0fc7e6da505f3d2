"""Collections, their access rules, uploaded documents and the indexed chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, UTCDateTime

#: on PostgreSQL the chunk's segmented tokens as a ``tsvector`` (GIN-indexed); unused text on SQLite,
#: where the FTS5 table ``knowledge_fts`` (made by the migration) holds the same tokens
SearchVector = Text().with_variant(postgresql.TSVECTOR(), "postgresql")


class KnowledgeCollection(IdentifiedBy, OrganizationScoped, Base):
    """A set of documents read under the same access rules.

    ``index_key`` changes whenever the set of searchable chunks changes (a document finished
    indexing or was deleted): processes that keep the collection's vectors in memory reload them then.
    """

    __tablename__ = "knowledge_collections"
    __noun__ = "knowledge_collection"
    __table_args__ = (
        Index("ix_knowledge_collections_org_id", "organization_id", "id"),
        UniqueConstraint("organization_id", "name", name="uq_knowledge_collections_org_name"),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    index_key: Mapped[str] = mapped_column(String(32), nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class AccessKind:
    ROLE = "role"
    USER = "user"
    PARTNER = "partner"
    ALL = (ROLE, USER, PARTNER)


class KnowledgeAccessRule(IdentifiedBy, OrganizationScoped, Base):
    """Who may read a collection besides its managers: a role, one user, or a partner organization."""

    __tablename__ = "knowledge_access_rules"
    __noun__ = "knowledge_access_rule"
    __table_args__ = (
        Index("ix_knowledge_access_rules_org_collection", "organization_id", "collection_id"),
        UniqueConstraint("collection_id", "kind", "value", name="uq_knowledge_access_rules_rule"),
    )

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("knowledge_collections.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    #: the role's name, or the user's / partner organization's id written as text
    value: Mapped[str] = mapped_column(String(40), nullable=False)


class DocumentStatus:
    QUEUED = "queued"
    INDEXING = "indexing"
    READY = "ready"
    FAILED = "failed"


class KnowledgeDocument(IdentifiedBy, OrganizationScoped, Base):
    """One uploaded file: its bytes (kept so it can be re-indexed), the text extracted from it (chunk
    offsets point into it) and how far indexing has come."""

    __tablename__ = "knowledge_documents"
    __noun__ = "knowledge_document"
    __table_args__ = (
        Index("ix_knowledge_documents_org_collection", "organization_id", "collection_id", "id"),
        # the same bytes once per collection (a copy whose indexing failed does not count: uploading
        # them again is how a failure is retried); the service checks first and answers 409, this
        # index settles two uploads that pass the check at the same moment
        Index(
            "uq_knowledge_documents_content",
            "organization_id",
            "collection_id",
            "sha256",
            unique=True,
            sqlite_where=text("status != 'failed'"),
            postgresql_where=text("status != 'failed'"),
        ),
    )

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("knowledge_collections.id", ondelete="CASCADE"), nullable=False
    )
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    file_format: Mapped[str] = mapped_column(String(10), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=DocumentStatus.QUEUED)
    chunks_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class KnowledgeChunk(IdentifiedBy, OrganizationScoped, Base):
    """A passage of a document: its heading path, text, offsets into the document's text, the
    jieba-segmented tokens the full-text index holds, and its embedding (float32, L2-normalized)."""

    __tablename__ = "knowledge_chunks"
    __noun__ = "knowledge_chunk"
    __table_args__ = (
        Index("ix_knowledge_chunks_org_collection", "organization_id", "collection_id", "id"),
        Index("ix_knowledge_chunks_document", "document_id", "ordinal"),
        Index("ix_knowledge_chunks_search", "search_vector", postgresql_using="gin"),
    )

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("knowledge_collections.id", ondelete="CASCADE"), nullable=False
    )
    document_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("knowledge_documents.id", ondelete="CASCADE"), nullable=False
    )
    ordinal: Mapped[int] = mapped_column(Integer, nullable=False)
    heading: Mapped[str] = mapped_column(Text, nullable=False, default="")
    text: Mapped[str] = mapped_column(Text, nullable=False)
    start: Mapped[int] = mapped_column(Integer, nullable=False)
    end: Mapped[int] = mapped_column(Integer, nullable=False)
    tokens: Mapped[str] = mapped_column(Text, nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    search_vector: Mapped[str | None] = mapped_column(SearchVector, nullable=True)
