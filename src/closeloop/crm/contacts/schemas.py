"""Contact request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import DecisionRole
from closeloop.crm.schemas import CustomValues, Email, ExternalRef, Id, Phone, Schema


class ContactFields(Schema):
    account_id: Id | None = None
    title: Annotated[str, Field(max_length=120, examples=["设备科主任"])] | None = None
    title_confirmed_on: date | None = None
    department: Annotated[str, Field(max_length=120)] | None = None
    decision_role: DecisionRole | None = None
    email: Email | None = None
    phone: Phone | None = None
    mobile: Phone | None = None
    wechat: Annotated[str, Field(max_length=80)] | None = None
    owner_id: Id | None = None
    external_ref: ExternalRef | None = None
    custom: CustomValues | None = None


class ContactCreate(ContactFields):
    name: Annotated[str, Field(min_length=1, max_length=120)]


class ContactUpdate(ContactFields):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
