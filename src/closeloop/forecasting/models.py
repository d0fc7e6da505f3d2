"""Stored forecasting models: one win-probability model per organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import JSONDocument, UTCDateTime


class WinProbabilityModel(IdentifiedBy, OrganizationScoped, Base):
    """The organization's latest win-probability model (a pickled calibrated LightGBM written by the
    retraining task, never by a request) and what it was trained on."""

    __tablename__ = "win_probability_models"
    __noun__ = "win_probability_model"
    __table_args__ = (Index("uq_win_probability_models_org", "organization_id", unique=True),)

    trained_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    closed_deals: Mapped[int] = mapped_column(Integer, nullable=False)
    won_deals: Mapped[int] = mapped_column(Integer, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
