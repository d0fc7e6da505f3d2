"""Quotes and their lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.crm.enums import QuoteStatus
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, Money, ScaledDecimal


class Quote(RecordModel, Owned):
    """A priced offer to an account, usually for an opportunity. Totals are computed from the lines."""

    __tablename__ = "quotes"
    __noun__ = "quote"
    __owner_column__ = "owner_id"
    __table_args__ = (
        *tenant_indexes("quotes", "opportunity_id", "account_id", "owner_id"),
        Index(
            "uq_quotes_org_number",
            "organization_id",
            "number",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    number: Mapped[str] = mapped_column(String(40), nullable=False)
    opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="SET NULL"), nullable=True
    )
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[QuoteStatus] = mapped_column(String(16), nullable=False, default=QuoteStatus.DRAFT)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    subtotal: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    discount_amount: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    margin: Mapped[Decimal | None] = mapped_column(ScaledDecimal(2), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)


class QuoteLine(IdentifiedBy, OrganizationScoped, Base):
    __tablename__ = "quote_lines"
    __table_args__ = (Index("ix_quote_lines_org_quote", "organization_id", "quote_id", "position"),)

    quote_id: Mapped[int] = mapped_column(BigId, ForeignKey("quotes.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id", ondelete="SET NULL"), nullable=True)
    description: Mapped[str | None] = mapped_column(String(300), nullable=True)
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(3), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    discount_percent: Mapped[Decimal] = mapped_column(ScaledDecimal(2), nullable=False, default=Decimal(0))
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
