"""Account request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import CompanySize, Tier
from closeloop.crm.schemas import Currency, CustomValues, ExternalRef, Id, Money, Name, Phone, Schema, ShortText, Text


class AccountFields(Schema):
    industry: Annotated[str, Field(max_length=80, examples=["medical devices"])] | None = None
    size: CompanySize | None = None
    employees: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    annual_revenue: Money | None = None
    tier: Tier | None = None
    region_id: Id | None = None
    country: Annotated[str, Field(max_length=80)] | None = None
    province: Annotated[str, Field(max_length=80)] | None = None
    city: Annotated[str, Field(max_length=80)] | None = None
    address: Text | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    phone: Phone | None = None
    website: ShortText | None = None
    credit_line: Money | None = None
    parent_account_id: Id | None = None
    year_established: Annotated[int, Field(ge=1800, le=2100)] | None = None
    owner_id: Id | None = None
    external_ref: ExternalRef | None = None
    custom: CustomValues | None = None


class AccountCreate(AccountFields):
    name: Name
    currency: Currency = "CNY"


class AccountUpdate(AccountFields):
    name: Name | None = None
    currency: Currency | None = None
