"""Referrals: which customer referred which lead (口碑)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, UTCDateTime


class Referral(RecordModel, Owned):
    """A lead that came from an existing customer (an account, and optionally the person there)."""

    __tablename__ = "referrals"
    __noun__ = "referral"
    __owner_column__ = "owner_id"
    __table_args__ = (
        *tenant_indexes("referrals", "owner_id", "referred_at"),
        Index("ix_referrals_org_referrer_referred", "organization_id", "referrer_account_id", "referred_at"),
        Index("ix_referrals_org_lead", "organization_id", "lead_id", unique=False),
    )

    referrer_account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="RESTRICT"), nullable=False
    )
    referrer_contact_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id", ondelete="RESTRICT"), nullable=False)
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
