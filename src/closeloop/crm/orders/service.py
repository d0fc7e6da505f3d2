"""Order services. A repurchase is not typed in: it is any later order of an account already won."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, PreconditionFailed
from closeloop.crm import records
from closeloop.crm.enums import OrderStatus
from closeloop.crm.lines import lines_of, price_lines, replace_lines, reprice
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.orders.schemas import OrderCreate, OrderUpdate
from closeloop.crm.quotes.service import next_number
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.audit import service as audit


def _lines(session: Session, actor: Actor, ids: Sequence[int]) -> list[dict[str, Any]]:
    return lines_of(session, actor, OrderLine, "order_id", ids)


ORDERS: RecordType[Order] = records.register(
    RecordType(
        noun="order",
        plural="orders",
        model=Order,
        read_fields=(
            "id",
            "number",
            "account_id",
            "opportunity_id",
            "contract_id",
            "ordered_at",
            "status",
            "currency",
            "total",
            "owner_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "number": FieldSpec(Kind.STR, sortable=True),
            "account_id": FieldSpec(Kind.INT),
            "opportunity_id": FieldSpec(Kind.INT),
            "contract_id": FieldSpec(Kind.INT),
            "ordered_at": FieldSpec(Kind.DATETIME, sortable=True),
            "status": FieldSpec(Kind.STR, tuple(OrderStatus)),
            "total": FieldSpec(Kind.DECIMAL, sortable=True),
            "owner_id": FieldSpec(Kind.INT),
        },
        references={
            "account_id": "account",
            "opportunity_id": "opportunity",
            "contract_id": "contract",
            "owner_id": "user",
        },
        search_fields=("number",),
        default_sort="-ordered_at",
        expand=_lines,
    )
)


def _check_number(session: Session, actor: Actor, number: str, own_id: int | None = None) -> None:
    statement = select(Order.id).where(tenant_clause(actor.organization_id, Order), Order.number == number)
    if own_id is not None:
        statement = statement.where(Order.id != own_id)
    if session.scalar(statement) is not None:
        raise Conflict(f"Order number {number} is taken", code="duplicate", field_name="number")


def get_order(session: Session, actor: Actor, *, order_id: int) -> Order:
    return records.get(session, actor, ORDERS, order_id, access=RowAccess.READ)


def place_order(session: Session, actor: Actor, *, data: OrderCreate) -> Order:
    """Record an order with its lines; the total is the sum of the lines."""
    records.require_write(actor, ORDERS)
    values = data.model_dump(exclude_unset=True, exclude={"lines"})
    priced = price_lines(session, actor, data.lines, allow_discount=False, currency=data.currency)
    values["total"] = sum((row["amount"] for row in priced), Decimal(0))
    values.setdefault("ordered_at", utcnow())
    values.setdefault("status", OrderStatus.CONFIRMED)
    if data.number:
        _check_number(session, actor, data.number)
    else:
        values["number"] = next_number(session, actor, Order, "SO")
    order = records.create(session, actor, ORDERS, values, related={"lines": priced})
    replace_lines(session, actor, OrderLine, "order_id", order.id, priced)
    session.flush()
    return order


def update_order(
    session: Session,
    actor: Actor,
    *,
    order_id: int,
    data: OrderUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Order:
    """Change an order; new lines replace the old ones and the total follows."""
    order = get_order(session, actor, order_id=order_id)
    records.require_write(actor, ORDERS)
    if expected_version is not None and order.version != expected_version:
        raise PreconditionFailed()
    if isinstance(data, OrderUpdate):
        line_inputs = data.lines
        changes = data.model_dump(exclude_unset=True, exclude={"lines"})
    else:
        changes = dict(data)
        line_inputs = changes.pop("lines", None)
    if changes.get("number"):
        _check_number(session, actor, changes["number"], order.id)
    priced = reprice(session, actor, OrderLine, "order_id", order, line_inputs, changes, allow_discount=False)
    if priced is not None:
        changes["total"] = sum((row["amount"] for row in priced), Decimal(0))
    if priced is not None:
        order.updated_at = utcnow()  # the lines change: one version bump covers them and the fields
    records.update(session, actor, ORDERS, order, changes)
    if priced is not None:
        replace_lines(session, actor, OrderLine, "order_id", order.id, priced)
        records.flush(session)
        audit.record(
            session,
            actor,
            "order.lines_replaced",
            subject_type="order",
            subject_id=order.id,
            changes={"lines": [None, audit.json_safe(priced)]},
        )
    return order


def delete_order(session: Session, actor: Actor, *, order_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session, actor, ORDERS, get_order(session, actor, order_id=order_id), expected_version=expected_version
    )
