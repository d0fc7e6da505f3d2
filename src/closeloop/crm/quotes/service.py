"""Quote services: priced offers whose totals always follow their lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, PreconditionFailed, ValidationFailed
from closeloop.crm import records
from closeloop.crm.enums import QuoteStatus
from closeloop.crm.lines import lines_of, price_lines, replace_lines, reprice
from closeloop.crm.quotes.models import Quote, QuoteLine
from closeloop.crm.quotes.schemas import QuoteCreate, QuoteUpdate
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.audit import service as audit


def _lines(session: Session, actor: Actor, ids: Sequence[int]) -> list[dict[str, Any]]:
    return lines_of(session, actor, QuoteLine, "quote_id", ids)


QUOTES: RecordType[Quote] = records.register(
    RecordType(
        noun="quote",
        plural="quotes",
        model=Quote,
        read_fields=(
            "id",
            "number",
            "opportunity_id",
            "account_id",
            "status",
            "valid_until",
            "currency",
            "subtotal",
            "discount_amount",
            "total",
            "margin",
            "notes",
            "owner_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "number": FieldSpec(Kind.STR, sortable=True),
            "opportunity_id": FieldSpec(Kind.INT),
            "account_id": FieldSpec(Kind.INT),
            "status": FieldSpec(Kind.STR, tuple(QuoteStatus)),
            "valid_until": FieldSpec(Kind.DATE, sortable=True),
            "total": FieldSpec(Kind.DECIMAL, sortable=True),
            "margin": FieldSpec(Kind.DECIMAL, sortable=True),
            "owner_id": FieldSpec(Kind.INT),
        },
        references={"opportunity_id": "opportunity", "account_id": "account", "owner_id": "user"},
        search_fields=("number", "notes"),
        expand=_lines,
    )
)


def next_number(session: Session, actor: Actor, model: Any, prefix: str) -> str:
    """The next document number of the year, e.g. ``Q-2026-00042`` (gaps are possible, repeats are not)."""
    year_prefix = f"{prefix}-{utcnow().year}-"
    count = session.scalar(
        select(func.count())
        .select_from(model)
        .where(tenant_clause(actor.organization_id, model, include_deleted=True), model.number.like(f"{year_prefix}%"))
    )
    candidate = count or 0
    while True:
        candidate += 1
        number = f"{year_prefix}{candidate:05d}"
        if (
            session.scalar(
                select(model.id).where(
                    tenant_clause(actor.organization_id, model, include_deleted=True), model.number == number
                )
            )
            is None
        ):
            return number


def _check_number(session: Session, actor: Actor, number: str, own_id: int | None = None) -> None:
    statement = select(Quote.id).where(tenant_clause(actor.organization_id, Quote), Quote.number == number)
    if own_id is not None:
        statement = statement.where(Quote.id != own_id)
    if session.scalar(statement) is not None:
        raise Conflict(f"Quote number {number} is taken", code="duplicate", field_name="number")


def _totals(priced: list[dict[str, Any]], discount_amount: Decimal) -> dict[str, Any]:
    subtotal = sum((row["amount"] for row in priced), Decimal(0))
    if discount_amount > subtotal:
        raise ValidationFailed.one("discount_amount", "is larger than the quote's subtotal")
    return {"subtotal": subtotal, "discount_amount": discount_amount, "total": subtotal - discount_amount}


def get_quote(session: Session, actor: Actor, *, quote_id: int) -> Quote:
    return records.get(session, actor, QUOTES, quote_id, access=RowAccess.READ)


def create_quote(session: Session, actor: Actor, *, data: QuoteCreate) -> Quote:
    """Create a quote with its lines; totals are computed, never typed."""
    records.require_write(actor, QUOTES)
    values = data.model_dump(exclude_unset=True, exclude={"lines"})
    priced = price_lines(session, actor, data.lines, allow_discount=True, currency=data.currency)
    values.update(_totals(priced, data.discount_amount or Decimal(0)))
    if data.number:
        _check_number(session, actor, data.number)
    else:
        values["number"] = next_number(session, actor, Quote, "Q")
    quote = records.create(session, actor, QUOTES, values, related={"lines": priced})
    replace_lines(session, actor, QuoteLine, "quote_id", quote.id, priced)
    session.flush()
    return quote


def update_quote(
    session: Session,
    actor: Actor,
    *,
    quote_id: int,
    data: QuoteUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Quote:
    """Change a quote; new lines replace the old ones and the totals follow."""
    quote = get_quote(session, actor, quote_id=quote_id)
    records.require_write(actor, QUOTES)
    if expected_version is not None and quote.version != expected_version:
        raise PreconditionFailed()
    if isinstance(data, QuoteUpdate):
        line_inputs = data.lines
        changes = data.model_dump(exclude_unset=True, exclude={"lines"})
    else:
        changes = dict(data)
        line_inputs = changes.pop("lines", None)
    if changes.get("number"):
        _check_number(session, actor, changes["number"], quote.id)
    priced = reprice(session, actor, QuoteLine, "quote_id", quote, line_inputs, changes, allow_discount=True)
    if priced is not None or "discount_amount" in changes:
        current = priced if priced is not None else _lines(session, actor, [quote.id])[0]["lines"]
        discount = changes.get("discount_amount")
        changes.update(_totals(current, quote.discount_amount if discount is None else discount))
    if priced is not None:
        quote.updated_at = utcnow()  # the lines change: one version bump covers them and the fields
    records.update(session, actor, QUOTES, quote, changes)
    if priced is not None:
        replace_lines(session, actor, QuoteLine, "quote_id", quote.id, priced)
        records.flush(session)
        audit.record(
            session,
            actor,
            "quote.lines_replaced",
            subject_type="quote",
            subject_id=quote.id,
            changes={"lines": [None, audit.json_safe(priced)]},
        )
    return quote


def delete_quote(session: Session, actor: Actor, *, quote_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session, actor, QUOTES, get_quote(session, actor, quote_id=quote_id), expected_version=expected_version
    )
