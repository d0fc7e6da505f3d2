"""Contacts: the people at an account, with their place in the decision chain."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.crm.enums import DecisionRole
from closeloop.crm.searchkey import Searchable
from closeloop.db.base import CustomFields, Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId


class Contact(RecordModel, Owned, CustomFields, Searchable):
    """A person at an account. ``title_confirmed_on`` says how fresh the title is."""

    __tablename__ = "contacts"
    __noun__ = "contact"
    __owner_column__ = "owner_id"
    #: the owner may read the account (implicit parent read; see closeloop.db.scope)
    __grants_parent_read__ = ("account_id",)
    __search_fields__ = ("name",)
    #: title_confirmed_on: the data-quality scan finds the titles that turned stale since its last run
    __table_args__ = tenant_indexes("contacts", "account_id", "owner_id", "email", "title_confirmed_on")

    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    title: Mapped[str | None] = mapped_column(String(120), nullable=True)
    title_confirmed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    department: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decision_role: Mapped[DecisionRole | None] = mapped_column(String(20), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    mobile: Mapped[str | None] = mapped_column(String(40), nullable=True)
    wechat: Mapped[str | None] = mapped_column(String(80), nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
