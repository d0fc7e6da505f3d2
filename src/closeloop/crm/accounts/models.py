"""Accounts: the companies (or households) we sell to."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.crm.enums import CompanySize, Tier
from closeloop.crm.searchkey import Searchable
from closeloop.db.base import CustomFields, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, Money


class Account(RecordModel, Owned, CustomFields, Searchable):
    """A customer company with its segmentation (industry, size, tier, region) and credit line."""

    __tablename__ = "accounts"
    __noun__ = "account"
    __owner_column__ = "owner_id"
    __search_fields__ = ("name",)
    __table_args__ = (
        *tenant_indexes("accounts", "owner_id", "region_id", "name"),
        Index(
            "uq_accounts_org_external_ref",
            "organization_id",
            "external_ref",
            unique=True,
            sqlite_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("external_ref IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    industry: Mapped[str | None] = mapped_column(String(80), nullable=True)
    size: Mapped[CompanySize | None] = mapped_column(String(16), nullable=True)
    employees: Mapped[int | None] = mapped_column(Integer, nullable=True)
    annual_revenue: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    tier: Mapped[Tier | None] = mapped_column(String(1), nullable=True)
    region_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("regions.id", ondelete="SET NULL"), nullable=True)
    country: Mapped[str | None] = mapped_column(String(80), nullable=True)
    province: Mapped[str | None] = mapped_column(String(80), nullable=True)
    city: Mapped[str | None] = mapped_column(String(80), nullable=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: WGS-84 degrees, for the customer map and the distance of a visit check-in (CN-5)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    website: Mapped[str | None] = mapped_column(String(200), nullable=True)
    credit_line: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    parent_account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    year_established: Mapped[int | None] = mapped_column(Integer, nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
