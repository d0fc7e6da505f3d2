"""The organization's standard contract templates (AST-4): the text a contract is compared against."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, UTCDateTime


class ContractTemplate(IdentifiedBy, OrganizationScoped, Base):
    """A standard contract, kept as the text extracted from its upload (DOCX, PDF or TXT)."""

    __tablename__ = "contract_templates"
    __noun__ = "contract_template"
    __table_args__ = (
        Index("ix_contract_templates_org_id", "organization_id", "id"),
        UniqueConstraint("organization_id", "name", name="uq_contract_templates_org_name"),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
