"""Contracts, made of clauses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.crm.enums import ContractStatus
from closeloop.db.base import Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, JSONDocument, Money


class Contract(RecordModel, Owned):
    """A signed agreement. ``clauses`` is an ordered list of ``{number, title, text}``."""

    __tablename__ = "contracts"
    __noun__ = "contract"
    __owner_column__ = "owner_id"
    __table_args__ = (
        *tenant_indexes("contracts", "account_id", "owner_id"),
        Index(
            "uq_contracts_org_number",
            "organization_id",
            "number",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    number: Mapped[str] = mapped_column(String(40), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="SET NULL"), nullable=True
    )
    quote_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("quotes.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[ContractStatus] = mapped_column(String(16), nullable=False, default=ContractStatus.DRAFT)
    signed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    clauses: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
