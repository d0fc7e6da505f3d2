"""Contract request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, model_validator

from closeloop.crm.enums import ContractStatus
from closeloop.crm.schemas import Currency, Id, Money, Name, Schema


class Clause(Schema):
    number: Annotated[str, Field(min_length=1, max_length=20, examples=["第五条", "5.1"])]
    title: Annotated[str, Field(max_length=200, examples=["付款方式"])] | None = None
    text: Annotated[str, Field(min_length=1, max_length=50_000)]


class ContractFields(Schema):
    account_id: Id | None = None
    opportunity_id: Id | None = None
    quote_id: Id | None = None
    status: ContractStatus | None = None
    signed_on: date | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    amount: Money | None = None
    clauses: Annotated[list[Clause], Field(max_length=500)] | None = None
    owner_id: Id | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> ContractFields:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class ContractCreate(ContractFields):
    title: Name
    number: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    currency: Currency = "CNY"


class ContractUpdate(ContractFields):
    title: Name | None = None
    number: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    currency: Currency | None = None
