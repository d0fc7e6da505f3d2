"""Custom-field definitions, one row per field of one record type in one organization."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Index, Integer, Numeric, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, SoftDeleted, Timestamped, Versioned
from closeloop.db.types import JSONDocument


class CustomFieldDefinition(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, SoftDeleted, Base):
    """A field that sales ops added to a record type. Values live in the record's ``custom`` JSON
    column under ``name``; deleting the definition hides the values (they stay, restorable)."""

    __tablename__ = "custom_field_definitions"
    __noun__ = "custom_field"
    __table_args__ = (Index("ix_custom_field_definitions_org_record", "organization_id", "record_type", "name"),)

    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    field_type: Mapped[str] = mapped_column(String(20), nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str] = mapped_column(String(100), nullable=False)
    help_zh: Mapped[str | None] = mapped_column(Text, nullable=True)
    help_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    min_value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4), nullable=True)
    max_value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4), nullable=True)
    max_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pattern: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: ``[{"value": "a", "label_zh": "甲", "label_en": "A"}, …]`` for choice and multi-choice fields
    choices: Mapped[list[dict[str, str]] | None] = mapped_column(JSONDocument, nullable=True)
    #: the noun a record-link field points to (``account``, ``contact`` …)
    link_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    default: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    #: roles that may read and write the field; ``None``: everyone who may read the record
    visible_to: Mapped[list[str] | None] = mapped_column(JSONDocument, nullable=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: the expression of a formula field (GOV-2), computed in the database when the record is read
    formula: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: an expression index on the value serves filters and sorts (built and dropped by
    #: :func:`closeloop.crm.customfields.sync_index`, outside the migrations: ``cfx_…``)
    indexed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
