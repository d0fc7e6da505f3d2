"""After-sales tickets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.crm.enums import TicketPriority, TicketStatus
from closeloop.db.base import Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, UTCDateTime


class Ticket(RecordModel, Owned):
    """An after-sales service request; ``owner_id`` is who handles it."""

    __tablename__ = "tickets"
    __noun__ = "ticket"
    __owner_column__ = "owner_id"
    #: the owner may read the account (implicit parent read; see closeloop.db.scope)
    __grants_parent_read__ = ("account_id",)
    __table_args__ = tenant_indexes("tickets", "account_id", "owner_id", "status")

    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[TicketStatus] = mapped_column(String(16), nullable=False, default=TicketStatus.OPEN)
    priority: Mapped[TicketPriority] = mapped_column(String(16), nullable=False, default=TicketPriority.NORMAL)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
