"""Priced lines shared by quotes and orders: validation, amounts and their serialized form."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.core.money import MAX_AMOUNT, quantize
from closeloop.crm.products.models import Product
from closeloop.crm.records import jsonable
from closeloop.crm.schemas import Id, Money, Percent, Quantity, Schema
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause

_THOUSANDTH = Decimal("0.001")


class LineInput(Schema):
    product_id: Id | None = None
    description: Annotated[str, Field(max_length=300)] | None = None
    quantity: Quantity
    unit_price: Money | None = Field(default=None, description="Default: the product's list price")
    discount_percent: Annotated[Percent, Field(ge=0)] | None = None


def price_lines(
    session: Session, actor: Actor, lines: Sequence[LineInput], *, allow_discount: bool, currency: str
) -> list[dict[str, Any]]:
    """Check the products and compute each line's amount (quantity × unit price − discount, in cents).

    A product priced in another currency than the document's is refused: amounts in different
    currencies must never be added up into one total.
    """
    if not lines:
        raise ValidationFailed.one("lines", "needs at least one line", "required")
    product_ids = {line.product_id for line in lines if line.product_id is not None}
    prices: dict[int, Decimal | None] = {}
    currencies: dict[int, str] = {}
    if product_ids:
        for product_id, list_price, product_currency in session.execute(
            select(Product.id, Product.list_price, Product.currency).where(
                visibility_clause(actor, Product, access=RowAccess.READ),
                Product.id.in_(product_ids),
            )
        ):
            prices[product_id], currencies[product_id] = list_price, product_currency
    priced: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        if line.product_id is not None and line.product_id not in prices:
            raise ValidationFailed.one(
                f"lines.{index}.product_id", f"no product {line.product_id} that you can see", "not_found"
            )
        if line.product_id is not None and currencies[line.product_id] != currency:
            raise ValidationFailed.one(
                f"lines.{index}.product_id",
                f"product {line.product_id} is priced in {currencies[line.product_id]}, the document in {currency}",
                "currency_mismatch",
            )
        if line.product_id is None and not line.description:
            raise ValidationFailed.one(
                f"lines.{index}.description", "a line without a product needs a description", "required"
            )
        unit_price = line.unit_price
        if unit_price is None:
            unit_price = prices.get(line.product_id) if line.product_id is not None else None
            if unit_price is None:
                raise ValidationFailed.one(
                    f"lines.{index}.unit_price", "is required (the product has no list price)", "required"
                )
        if line.discount_percent and not allow_discount:
            raise ValidationFailed.one(f"lines.{index}.discount_percent", "orders carry net prices; no discount")
        discount = line.discount_percent or Decimal(0)
        amount = quantize(line.quantity * unit_price * (Decimal(100) - discount) / Decimal(100))
        if amount > MAX_AMOUNT:
            raise ValidationFailed.one(f"lines.{index}.quantity", f"makes the line amount larger than {MAX_AMOUNT}")
        row = {
            "position": index + 1,
            "product_id": line.product_id,
            "description": line.description,
            "quantity": line.quantity.quantize(_THOUSANDTH),
            "unit_price": quantize(unit_price),
            "amount": amount,
        }
        if allow_discount:
            row["discount_percent"] = quantize(discount)
        priced.append(row)
    if sum((row["amount"] for row in priced), Decimal(0)) > MAX_AMOUNT:
        raise ValidationFailed.one("lines", f"the lines add up to more than {MAX_AMOUNT}")
    return priced


def check_lines_currency(
    session: Session, actor: Actor, line_model: Any, parent_column: str, parent_id: int, currency: str
) -> None:
    """Refuse to change a document's currency while its stored lines hold products priced in another."""
    other = session.scalar(
        select(Product.currency)
        .join(line_model, line_model.product_id == Product.id)
        .where(
            tenant_clause(actor.organization_id, line_model),
            getattr(line_model, parent_column) == parent_id,
            Product.currency != currency,
        )
        .limit(1)
    )
    if other is not None:
        raise ValidationFailed.one(
            "currency", f"its lines hold products priced in {other}; replace the lines too", "currency_mismatch"
        )


def reprice(
    session: Session,
    actor: Actor,
    line_model: Any,
    parent_column: str,
    document: Any,
    line_inputs: Sequence[LineInput] | None,
    changes: dict[str, Any],
    *,
    allow_discount: bool,
) -> list[dict[str, Any]] | None:
    """For a change of a quote or order: its new priced lines (``None`` when the lines stay), after
    checking that the products and the document's (possibly new) currency agree."""
    currency = changes.get("currency") or document.currency
    if line_inputs is None:
        if currency != document.currency:
            check_lines_currency(session, actor, line_model, parent_column, document.id, currency)
        return None
    return price_lines(session, actor, line_inputs, allow_discount=allow_discount, currency=currency)


def replace_lines(
    session: Session, actor: Actor, line_model: Any, parent_column: str, parent_id: int, priced: list[dict[str, Any]]
) -> None:
    session.execute(
        delete(line_model).where(
            tenant_clause(actor.organization_id, line_model), getattr(line_model, parent_column) == parent_id
        )
    )
    session.add_all(
        line_model(organization_id=actor.organization_id, **{parent_column: parent_id}, **row) for row in priced
    )


def lines_of(
    session: Session, actor: Actor, line_model: Any, parent_column: str, ids: Sequence[int]
) -> list[dict[str, Any]]:
    """``{"lines": [...]}`` for each parent id, in one query."""
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        column = getattr(line_model, parent_column)
        fields = [c.name for c in line_model.__table__.c if c.name not in ("organization_id", parent_column)]
        for line in session.scalars(
            select(line_model)
            .where(tenant_clause(actor.organization_id, line_model), column.in_(ids))
            .order_by(column, line_model.position)
        ):
            grouped[getattr(line, parent_column)].append({name: getattr(line, name) for name in fields})
    return [{"lines": grouped.get(i, [])} for i in ids]


__all__ = ["LineInput", "check_lines_currency", "jsonable", "lines_of", "price_lines", "replace_lines", "reprice"]
