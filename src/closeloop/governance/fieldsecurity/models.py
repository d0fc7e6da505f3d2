"""One configured cell of the field-security matrix: may ``role`` read and edit ``record_type.field``?"""

from __future__ import annotations

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped


class FieldSecurityRule(IdentifiedBy, OrganizationScoped, Timestamped, Base):
    """Overrides the default (the built-in masks, or a custom field's ``visible_to``) for one role
    on one field; a field with no row for a role keeps its default for that role."""

    __tablename__ = "field_security_rules"
    __noun__ = "field_security_rule"
    __table_args__ = (UniqueConstraint("organization_id", "record_type", "field", "role"),)

    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    #: a stored or computed field's name, or ``custom.<name>`` for a custom (or formula) field
    field: Mapped[str] = mapped_column(String(60), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    can_read: Mapped[bool] = mapped_column(Boolean, nullable=False)
    can_edit: Mapped[bool] = mapped_column(Boolean, nullable=False)
