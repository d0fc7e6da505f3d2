"""Ticket request bodies."""

from __future__ import annotations

from closeloop.crm.enums import TicketPriority, TicketStatus
from closeloop.crm.schemas import Id, Name, Schema, Text, Timestamp


class TicketFields(Schema):
    description: Text | None = None
    account_id: Id | None = None
    contact_id: Id | None = None
    product_id: Id | None = None
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    owner_id: Id | None = None


class TicketCreate(TicketFields):
    subject: Name
    opened_at: Timestamp | None = None


class TicketUpdate(TicketFields):
    subject: Name | None = None
