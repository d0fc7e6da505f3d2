"""Opportunities and their stage history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.crm.enums import Stage
from closeloop.crm.searchkey import Searchable
from closeloop.db.base import Base, CustomFields, IdentifiedBy, OrganizationScoped, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, Money, ScaledDecimal, UTCDateTime


class Opportunity(RecordModel, Owned, CustomFields, Searchable):
    """A qualified potential deal. Stage moves go through ``move_stage`` so history is never skipped.

    ``opened_at`` is when the deal entered the pipeline (for imported history, the engage date);
    ``closed_at`` is set when it is won or lost. ``margin`` is a percentage, visible to finance roles.
    """

    __tablename__ = "opportunities"
    __noun__ = "opportunity"
    __owner_column__ = "owner_id"
    #: the owner may read the account (implicit parent read; see closeloop.db.scope)
    __grants_parent_read__ = ("account_id",)
    __search_fields__ = ("name",)
    __table_args__ = (
        *tenant_indexes(
            "opportunities",
            "owner_id",
            "account_id",
            "stage",
            "expected_close_date",
            "amount",
            "opened_at",
            "closed_at",
            "updated_at",
            "stage_changed_at",  # the quality scan's "no progress for N days" boundary
        ),
        Index(
            "uq_opportunities_org_external_ref",
            "organization_id",
            "external_ref",
            unique=True,
            sqlite_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True)
    stage: Mapped[Stage] = mapped_column(String(20), nullable=False, default=Stage.PROSPECTING)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    margin: Mapped[Decimal | None] = mapped_column(ScaledDecimal(2), nullable=True)
    expected_close_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id", ondelete="SET NULL"), nullable=True)
    lost_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_lead_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True
    )
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)


class OpportunityProductLine(OrganizationScoped, Base):
    """Which product lines an opportunity covers."""

    __tablename__ = "opportunity_product_lines"
    __table_args__ = (Index("ix_opportunity_product_lines_org_line", "organization_id", "product_line_id"),)

    opportunity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True
    )
    product_line_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product_lines.id", ondelete="CASCADE"), primary_key=True
    )


class StageChange(IdentifiedBy, OrganizationScoped, Base):
    """One move of an opportunity from a stage to another: who, when, and how long it sat before."""

    __tablename__ = "stage_changes"
    __noun__ = "stage_change"
    __table_args__ = (
        Index("ix_stage_changes_org_opportunity", "organization_id", "opportunity_id", "changed_at"),
        Index("ix_stage_changes_org_changed", "organization_id", "changed_at"),
    )

    opportunity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False
    )
    from_stage: Mapped[Stage | None] = mapped_column(String(20), nullable=True)
    to_stage: Mapped[Stage] = mapped_column(String(20), nullable=False)
    changed_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    #: seconds spent in ``from_stage`` before this move (``None`` for the first entry)
    duration_seconds: Mapped[int | None] = mapped_column(BigId, nullable=True)
