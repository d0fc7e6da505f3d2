"""Ticket services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.crm import records
from closeloop.crm.enums import TicketPriority, TicketStatus
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.crm.tickets.models import Ticket
from closeloop.crm.tickets.schemas import TicketCreate, TicketUpdate
from closeloop.db.scope import RowAccess

TICKETS: RecordType[Ticket] = records.register(
    RecordType(
        noun="ticket",
        plural="tickets",
        model=Ticket,
        read_fields=(
            "id",
            "subject",
            "description",
            "account_id",
            "contact_id",
            "product_id",
            "status",
            "priority",
            "opened_at",
            "resolved_at",
            "owner_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "subject": FieldSpec(Kind.STR, sortable=True),
            "account_id": FieldSpec(Kind.INT),
            "contact_id": FieldSpec(Kind.INT),
            "product_id": FieldSpec(Kind.INT),
            "status": FieldSpec(Kind.STR, tuple(TicketStatus), sortable=True),
            "priority": FieldSpec(Kind.STR, tuple(TicketPriority)),
            "owner_id": FieldSpec(Kind.INT),
            "opened_at": FieldSpec(Kind.DATETIME, sortable=True),
            "resolved_at": FieldSpec(Kind.DATETIME, sortable=True),
        },
        references={"account_id": "account", "contact_id": "contact", "product_id": "product", "owner_id": "user"},
        search_fields=("subject", "description"),
    )
)

_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


def _resolution(values: dict[str, Any], previous: str | None) -> dict[str, Any]:
    status = values.get("status")
    if status in _DONE and previous not in _DONE:
        values["resolved_at"] = utcnow()
    elif status is not None and status not in _DONE and previous in _DONE:
        values["resolved_at"] = None
    return values


def get_ticket(session: Session, actor: Actor, *, ticket_id: int) -> Ticket:
    return records.get(session, actor, TICKETS, ticket_id, access=RowAccess.READ)


def open_ticket(session: Session, actor: Actor, *, data: TicketCreate) -> Ticket:
    """Open an after-sales ticket."""
    values = data.model_dump(exclude_unset=True)
    values.setdefault("opened_at", utcnow())
    return records.create(session, actor, TICKETS, _resolution(values, None))


def update_ticket(
    session: Session,
    actor: Actor,
    *,
    ticket_id: int,
    data: TicketUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Ticket:
    """Change a ticket; resolving it stamps ``resolved_at``, reopening clears it."""
    ticket = get_ticket(session, actor, ticket_id=ticket_id)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, TicketUpdate) else dict(data)
    return records.update(
        session, actor, TICKETS, ticket, _resolution(changes, ticket.status), expected_version=expected_version
    )


def delete_ticket(session: Session, actor: Actor, *, ticket_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session, actor, TICKETS, get_ticket(session, actor, ticket_id=ticket_id), expected_version=expected_version
    )
