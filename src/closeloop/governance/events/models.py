"""Outbox rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class OutboxEvent(IdentifiedBy, OrganizationScoped, Base):
    """One event, written with the change it tells of; ``processed_at`` is set in the same
    transaction as everything processing it did, so a crash leaves it either wholly done or untouched.

    ``attempts``/``error`` record processing that failed (it is retried a few times, then left with
    its error for an operator to read).
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_pending", "processed_at", "id"),
        Index("ix_outbox_events_org_type", "organization_id", "event_type", "occurred_at"),
        Index("ix_outbox_events_org_subject", "organization_id", "subject_type", "subject_id", "id"),
    )

    event_type: Mapped[str] = mapped_column(String(80), nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    actor_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
