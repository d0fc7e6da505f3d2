"""Product lines and products: the catalogue every role reads and sales ops maintain."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import RecordModel, tenant_indexes
from closeloop.db.types import BigId, Money


class ProductLine(RecordModel):
    """A family of products (e.g. 影像设备, GTX series); forecasts and dashboards cut by it."""

    __tablename__ = "product_lines"
    __noun__ = "product_line"
    __table_args__ = (
        *tenant_indexes("product_lines"),
        Index(
            "uq_product_lines_org_name",
            "organization_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Product(RecordModel):
    """A sellable product with its list price and lead time."""

    __tablename__ = "products"
    __noun__ = "product"
    __table_args__ = (
        *tenant_indexes("products", "product_line_id"),
        Index(
            "uq_products_org_code",
            "organization_id",
            "code",
            unique=True,
            sqlite_where=text("code IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("code IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    product_line_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("product_lines.id", ondelete="SET NULL"), nullable=True
    )
    list_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    lead_time_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
