"""Opportunity request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import Stage
from closeloop.crm.schemas import Currency, CustomValues, ExternalRef, Id, Money, Name, Percent, Schema, Text, Timestamp

LostReason = Annotated[str, Field(min_length=1, max_length=2000, examples=["价格高于竞品 15%"])]


class OpportunityFields(Schema):
    account_id: Id | None = None
    contact_id: Id | None = None
    amount: Money | None = None
    margin: Percent | None = None
    expected_close_date: date | None = None
    owner_id: Id | None = None
    product_id: Id | None = None
    product_line_ids: Annotated[list[Id], Field(max_length=50)] | None = None
    lost_reason: LostReason | None = None
    description: Text | None = None
    external_ref: ExternalRef | None = None
    custom: CustomValues | None = None


class OpportunityCreate(OpportunityFields):
    name: Name
    stage: Stage = Stage.PROSPECTING
    currency: Currency = "CNY"
    opened_at: Timestamp | None = Field(default=None, description="When the deal entered the pipeline (default: now)")


class OpportunityUpdate(OpportunityFields):
    name: Name | None = None
    stage: Stage | None = None
    currency: Currency | None = None


class StageMove(Schema):
    stage: Stage
    lost_reason: LostReason | None = None
