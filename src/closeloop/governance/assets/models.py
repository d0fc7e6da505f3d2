"""A maintained entry of the data asset map: the RACI of one record type, field group or metric."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, JSONDocument


class DataAsset(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """Who produces an asset, who consumes it, and its RACI for quality (roles; one accountable person)."""

    __tablename__ = "data_assets"
    __noun__ = "data_asset"
    __table_args__ = (UniqueConstraint("organization_id", "kind", "key"),)

    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    key: Mapped[str] = mapped_column(String(80), nullable=False)
    produced_by: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    consumed_by: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    responsible: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    accountable_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    consulted: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    informed: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
