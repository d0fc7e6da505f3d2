"""Leads: prospects not yet qualified, and what they were converted into."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.crm.enums import LeadSource, LeadStatus
from closeloop.crm.searchkey import Searchable
from closeloop.db.base import CustomFields, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, UTCDateTime


class Lead(RecordModel, Owned, CustomFields, Searchable):
    """A prospect. ``owner_id`` is the rep it is assigned to; unassigned leads are visible to all reps."""

    __tablename__ = "leads"
    __noun__ = "lead"
    __owner_column__ = "owner_id"
    __search_fields__ = ("name", "company")
    __unowned_visible__ = True
    __table_args__ = (
        *tenant_indexes("leads", "owner_id", "status", "received_at"),
        Index(
            "uq_leads_org_external_ref",
            "organization_id",
            "external_ref",
            unique=True,
            sqlite_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    company: Mapped[str | None] = mapped_column(String(200), nullable=True)
    title: Mapped[str | None] = mapped_column(String(120), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    mobile: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[LeadSource] = mapped_column(String(20), nullable=False, default=LeadSource.OTHER)
    status: Mapped[LeadStatus] = mapped_column(String(20), nullable=False, default=LeadStatus.NEW)
    industry: Mapped[str | None] = mapped_column(String(80), nullable=True)
    region_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("regions.id", ondelete="SET NULL"), nullable=True)
    product_line_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("product_lines.id", ondelete="SET NULL"), nullable=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    disqualified_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    converted_account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    converted_contact_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    converted_opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
