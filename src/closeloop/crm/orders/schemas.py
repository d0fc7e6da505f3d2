"""Order request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import OrderStatus
from closeloop.crm.lines import LineInput
from closeloop.crm.schemas import Currency, Id, Schema, Timestamp

OrderNumber = Annotated[str, Field(min_length=1, max_length=40, examples=["SO-2026-00001"])]


class OrderCreate(Schema):
    account_id: Id
    number: OrderNumber | None = Field(default=None, description="Default: the next SO-YYYY-NNNNN")
    opportunity_id: Id | None = None
    contract_id: Id | None = None
    ordered_at: Timestamp | None = None
    status: OrderStatus | None = None
    currency: Currency = "CNY"
    owner_id: Id | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=1000)]


class OrderUpdate(Schema):
    number: OrderNumber | None = None
    opportunity_id: Id | None = None
    contract_id: Id | None = None
    ordered_at: Timestamp | None = None
    status: OrderStatus | None = None
    currency: Currency | None = None
    owner_id: Id | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=1000)] | None = None
