"""Quote request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import QuoteStatus
from closeloop.crm.lines import LineInput
from closeloop.crm.schemas import Currency, Id, Money, Percent, Schema, Text

QuoteNumber = Annotated[str, Field(min_length=1, max_length=40, examples=["Q-2026-0001"])]


class QuoteFields(Schema):
    opportunity_id: Id | None = None
    account_id: Id | None = None
    status: QuoteStatus | None = None
    valid_until: date | None = None
    discount_amount: Money | None = None
    margin: Percent | None = None
    notes: Text | None = None
    owner_id: Id | None = None


class QuoteCreate(QuoteFields):
    number: QuoteNumber | None = Field(default=None, description="Default: the next Q-YYYY-NNNNN")
    currency: Currency = "CNY"
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=500)]


class QuoteUpdate(QuoteFields):
    number: QuoteNumber | None = None
    currency: Currency | None = None
    lines: Annotated[list[LineInput], Field(min_length=1, max_length=500)] | None = None
