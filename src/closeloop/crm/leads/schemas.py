"""Lead request bodies, including conversion."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.crm.contacts.schemas import ContactCreate
from closeloop.crm.enums import LeadSource, LeadStatus
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.crm.schemas import CustomValues, Email, ExternalRef, Id, Phone, Schema, Text, Timestamp


class LeadFields(Schema):
    company: Annotated[str, Field(max_length=200, examples=["北京协和医院"])] | None = None
    title: Annotated[str, Field(max_length=120)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    mobile: Phone | None = None
    source: LeadSource | None = None
    industry: Annotated[str, Field(max_length=80)] | None = None
    region_id: Id | None = None
    product_line_id: Id | None = None
    owner_id: Id | None = Field(default=None, description="The rep the lead is assigned to; empty = unassigned")
    notes: Text | None = None
    external_ref: ExternalRef | None = None
    custom: CustomValues | None = None


class LeadCreate(LeadFields):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    received_at: Timestamp | None = None


class LeadUpdate(LeadFields):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    status: LeadStatus | None = None
    disqualified_reason: Text | None = None


class LeadAssign(Schema):
    owner_id: Id | None = Field(description="The rep to assign to; null puts the lead back in the inbox")


class LeadConvert(Schema):
    """Convert a lead in one step: into an existing account (``account_id``) or a new one (``account``),
    with a new contact (default: from the lead) and optionally a new opportunity."""

    account_id: Id | None = None
    account: AccountCreate | None = None
    contact: ContactCreate | None = None
    create_contact: bool = True
    opportunity: OpportunityCreate | None = None
    create_opportunity: bool = True

    @model_validator(mode="after")
    def _one_account(self) -> LeadConvert:
        if self.account_id is not None and self.account is not None:
            raise ValueError("give account_id (an existing account) or account (a new one), not both")
        return self
