"""Compliance scans, the findings they store per activity, and the supervisors' review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class ComplianceScan(IdentifiedBy, OrganizationScoped, Base):
    """One batch run of the checker over logged activities (queued, then run by the worker)."""

    __tablename__ = "compliance_scans"
    __noun__ = "compliance_scan"
    __table_args__ = (Index("ix_compliance_scans_org_id", "organization_id", "id"),)

    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    activities_checked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    findings_stored: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reviews_opened: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ComplianceFinding(IdentifiedBy, OrganizationScoped, Base):
    """One risky phrase in one field of one activity. ``user_id`` follows the activity's owner, so
    row scopes apply as to the activity; ``span`` is shown only to readers who may read ``field``."""

    __tablename__ = "compliance_findings"
    __noun__ = "compliance_finding"
    __owner_column__ = "user_id"
    __table_args__ = (
        Index("ix_compliance_findings_org_id", "organization_id", "id"),
        Index("ix_compliance_findings_org_activity", "organization_id", "activity_id"),
        Index("ix_compliance_findings_org_user", "organization_id", "user_id", "id"),
    )

    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    scan_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("compliance_scans.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    field: Mapped[str] = mapped_column(String(40), nullable=False)
    start: Mapped[int] = mapped_column(Integer, nullable=False)
    end: Mapped[int] = mapped_column(Integer, nullable=False)
    span: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    citation: Mapped[str] = mapped_column(String(80), nullable=False)
    rule: Mapped[str] = mapped_column(String(80), nullable=False)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ComplianceReview(IdentifiedBy, OrganizationScoped, Base):
    """An outgoing message with a level-3 finding, waiting for the rep's manager to approve or reject.

    ``rep_id`` is the author (the owner column: the rep and those above them see it); ``activity_id``
    is set for a logged message, ``draft`` for a draft checked before sending.
    """

    __tablename__ = "compliance_reviews"
    __noun__ = "compliance_review"
    __owner_column__ = "rep_id"
    __table_args__ = (
        Index("ix_compliance_reviews_org_id", "organization_id", "id"),
        Index("ix_compliance_reviews_org_rep", "organization_id", "rep_id", "id"),
        Index("ix_compliance_reviews_org_status", "organization_id", "status", "id"),
    )

    rep_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reviewer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    activity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("activities.id", ondelete="CASCADE"), nullable=True
    )
    draft: Mapped[str | None] = mapped_column(Text, nullable=True)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
