"""Alert thresholds: "notify me when <metric> of <scope> falls below / rises above <value>"."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, ScaledDecimal, UTCDateTime


class AlertThreshold(IdentifiedBy, OrganizationScoped, Base):
    """One person's threshold on one metric of a dashboard. ``scope`` holds the dashboard's fixed
    dimension values (``{"region": "3"}``); ``period`` the closing window (``all``, ``quarter``,
    ``year``, ``last_90_days``). The check evaluates it *as its owner* — their row scope, their masks.
    Only its owner lists or deletes it (``owner_id`` is the row-scope column, and reads also filter
    on the owner, so not even a manager sees another person's thresholds)."""

    __tablename__ = "alert_thresholds"
    __noun__ = "alert_threshold"
    __owner_column__ = "owner_id"
    __table_args__ = (Index("ix_alert_thresholds_org_owner", "organization_id", "owner_id", "id"),)

    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    dashboard: Mapped[str] = mapped_column(String(40), nullable=False)
    metric: Mapped[str] = mapped_column(String(60), nullable=False)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    period: Mapped[str] = mapped_column(String(20), nullable=False, default="all")
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    value: Mapped[Decimal] = mapped_column(ScaledDecimal(4), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_value: Mapped[Decimal | None] = mapped_column(ScaledDecimal(4), nullable=True)
    breached: Mapped[bool] = mapped_column(default=False, nullable=False)
