"""Activities: every touch with a customer is an interaction event (CRM-3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.crm.enums import ActivityKind, Direction
from closeloop.db.base import CustomFields, RecordModel, tenant_indexes
from closeloop.db.types import BigId, UTCDateTime


class Activity(RecordModel, CustomFields):
    """A call, email, chat message, visit or meeting: who, when, channel, content reference, outcome.

    ``is_replied`` tells whether an outbound message got an answer (``None`` when it does not apply).
    """

    __tablename__ = "activities"
    __noun__ = "activity"
    __owner_column__ = "user_id"
    __table_args__ = (
        *tenant_indexes("activities", "user_id", "occurred_at", "updated_at"),
        Index("ix_activities_org_account_occurred", "organization_id", "account_id", "occurred_at"),
        Index("ix_activities_org_opportunity", "organization_id", "opportunity_id"),
        Index("ix_activities_org_lead", "organization_id", "lead_id"),
        Index("ix_activities_org_contact", "organization_id", "contact_id"),
    )

    kind: Mapped[ActivityKind] = mapped_column(String(16), nullable=False)
    direction: Mapped[Direction] = mapped_column(String(16), nullable=False, default=Direction.OUTBOUND)
    subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("opportunities.id", ondelete="SET NULL"), nullable=True
    )
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True)
    is_replied: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
