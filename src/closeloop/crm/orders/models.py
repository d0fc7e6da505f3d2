"""Orders and order lines. A repurchase is a later order of an account already won."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.crm.enums import OrderStatus
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, Money, ScaledDecimal, UTCDateTime


class Order(RecordModel, Owned):
    """What an account bought, when. ``total`` is the sum of its lines."""

    __tablename__ = "orders"
    __noun__ = "order"
    __owner_column__ = "owner_id"
    __table_args__ = (
        *tenant_indexes("orders", "owner_id", "ordered_at"),
        # an account's orders in time order: repurchase detection in the funnel walks exactly this
        Index("ix_orders_org_account_ordered", "organization_id", "account_id", "ordered_at"),
        Index(
            "uq_orders_org_number",
            "organization_id",
            "number",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    number: Mapped[str] = mapped_column(String(40), nullable=False)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="RESTRICT"), nullable=False)
    opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="SET NULL"), nullable=True
    )
    contract_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contracts.id", ondelete="SET NULL"), nullable=True
    )
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    status: Mapped[OrderStatus] = mapped_column(String(16), nullable=False, default=OrderStatus.CONFIRMED)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    total: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))


class OrderLine(IdentifiedBy, OrganizationScoped, Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_org_order", "organization_id", "order_id", "position"),
        Index("ix_order_lines_org_product", "organization_id", "product_id"),
    )

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id", ondelete="SET NULL"), nullable=True)
    description: Mapped[str | None] = mapped_column(String(300), nullable=True)
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(3), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
