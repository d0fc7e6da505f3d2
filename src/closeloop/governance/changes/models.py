"""A requested change to the organization's schema, and the sign-offs it collected."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class ChangeStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    #: approved, but it could no longer be applied (the schema moved on meanwhile)
    FAILED = "failed"


class ChangeRequest(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One proposed change (``kind`` names it, ``payload`` holds it), its impact when proposed,
    who asked and why, and what became of it."""

    __tablename__ = "change_requests"
    __noun__ = "change_request"
    __table_args__ = (Index("ix_change_requests_org_status", "organization_id", "status", "id"),)

    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    #: the definition changed or retired (``None`` for a new one until it is applied)
    target_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    #: the target as it was when the change was requested (what a rollback restores)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    impact: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    summary: Mapped[str] = mapped_column(String(300), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ChangeStatus.PENDING)
    required_roles: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    requested_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rejected_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the request this one rolls back
    rolls_back_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ChangeApproval(IdentifiedBy, OrganizationScoped, Base):
    """One person's sign-off on a change request, in the role they held when they gave it."""

    __tablename__ = "change_approvals"
    __noun__ = "change_approval"
    __table_args__ = (
        UniqueConstraint("change_request_id", "user_id"),
        Index("ix_change_approvals_org_request", "organization_id", "change_request_id"),
    )

    change_request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("change_requests.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
