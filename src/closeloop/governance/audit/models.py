"""Audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class AuditEntry(IdentifiedBy, OrganizationScoped, Base):
    """One change, by one actor, at one time; ``hash`` chains it to the entry before it (``seq - 1``).

    The table is append-only: database triggers refuse UPDATE and DELETE, and
    ``closeloop audit verify`` detects any entry edited, removed or reordered behind their back.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("organization_id", "seq"),
        Index("ix_audit_entries_subject", "organization_id", "subject_type", "subject_id", "seq"),
        Index("ix_audit_entries_org_occurred", "organization_id", "occurred_at"),
        # "records I touched recently" on the home page: one person's latest entries
        Index("ix_audit_entries_org_actor_occurred", "organization_id", "actor_user_id", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(BigId, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor_token_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor_label: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(80), nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: schema version of the hashed payload, so the canonical form can evolve
    hash_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class AuditHead(OrganizationScoped, Base):
    """The newest entry of an organization's chain: the row writers lock, and a check against truncation."""

    __tablename__ = "audit_heads"

    organization_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("organizations.id", ondelete="RESTRICT"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigId, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
