"""Product and product-line request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from closeloop.crm.schemas import Currency, Id, Money, Schema, Text


class ProductLineCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    code: Annotated[str, Field(max_length=40)] | None = None
    description: Text | None = None


class ProductLineUpdate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    code: Annotated[str, Field(max_length=40)] | None = None
    description: Text | None = None


class ProductFields(Schema):
    code: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    product_line_id: Id | None = None
    list_price: Money | None = None
    unit: Annotated[str, Field(max_length=20)] | None = None
    lead_time_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    is_active: bool | None = None
    description: Text | None = None


class ProductCreate(ProductFields):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Currency = "CNY"


class ProductUpdate(ProductFields):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    currency: Currency | None = None
