"""Catalogue services: product lines and products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict
from closeloop.crm import records
from closeloop.crm.products.models import Product, ProductLine
from closeloop.crm.products.schemas import ProductCreate, ProductLineCreate, ProductLineUpdate, ProductUpdate
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess, visible

PRODUCT_LINES: RecordType[ProductLine] = records.register(
    RecordType(
        noun="product_line",
        plural="product_lines",
        model=ProductLine,
        read_fields=("id", "name", "code", "description", "version", "created_at", "updated_at"),
        filters={"name": FieldSpec(Kind.STR, sortable=True), "code": FieldSpec(Kind.STR)},
        default_sort="name",
    )
)

PRODUCTS: RecordType[Product] = records.register(
    RecordType(
        noun="product",
        plural="products",
        model=Product,
        read_fields=(
            "id",
            "name",
            "code",
            "product_line_id",
            "list_price",
            "currency",
            "unit",
            "lead_time_days",
            "is_active",
            "description",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "name": FieldSpec(Kind.STR, sortable=True),
            "code": FieldSpec(Kind.STR, sortable=True),
            "product_line_id": FieldSpec(Kind.INT),
            "is_active": FieldSpec(Kind.BOOL),
            "list_price": FieldSpec(Kind.DECIMAL, sortable=True),
        },
        references={"product_line_id": "product_line"},
        search_fields=("name", "code"),
        default_sort="name",
    )
)


def _unique(session: Session, actor: Actor, model: Any, field: str, value: Any, own_id: int | None = None) -> None:
    if value is None:
        return
    statement = visible(actor, model, access=RowAccess.READ).where(getattr(model, field) == value)
    if own_id is not None:
        statement = statement.where(model.id != own_id)
    if session.scalar(select(statement.exists())):
        raise Conflict(
            f"A {model.__noun__.replace('_', ' ')} with {field} '{value}' already exists",
            code="duplicate",
            field_name=field,
        )


def create_product_line(session: Session, actor: Actor, *, data: ProductLineCreate) -> ProductLine:
    records.require_write(actor, PRODUCT_LINES)
    _unique(session, actor, ProductLine, "name", data.name)
    return records.create(session, actor, PRODUCT_LINES, data.model_dump(exclude_unset=True))


def update_product_line(
    session: Session,
    actor: Actor,
    *,
    product_line_id: int,
    data: ProductLineUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> ProductLine:
    line = records.get(session, actor, PRODUCT_LINES, product_line_id, access=RowAccess.WRITE)
    records.require_write(actor, PRODUCT_LINES)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ProductLineUpdate) else dict(data)
    _unique(session, actor, ProductLine, "name", changes.get("name"), line.id)
    return records.update(session, actor, PRODUCT_LINES, line, changes, expected_version=expected_version)


def delete_product_line(
    session: Session, actor: Actor, *, product_line_id: int, expected_version: int | None = None
) -> None:
    records.delete(
        session,
        actor,
        PRODUCT_LINES,
        records.get(session, actor, PRODUCT_LINES, product_line_id, access=RowAccess.WRITE),
        expected_version=expected_version,
    )


def create_product(session: Session, actor: Actor, *, data: ProductCreate) -> Product:
    records.require_write(actor, PRODUCTS)
    _unique(session, actor, Product, "code", data.code)
    return records.create(session, actor, PRODUCTS, data.model_dump(exclude_unset=True))


def update_product(
    session: Session,
    actor: Actor,
    *,
    product_id: int,
    data: ProductUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Product:
    product = records.get(session, actor, PRODUCTS, product_id, access=RowAccess.WRITE)
    records.require_write(actor, PRODUCTS)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ProductUpdate) else dict(data)
    _unique(session, actor, Product, "code", changes.get("code"), product.id)
    return records.update(session, actor, PRODUCTS, product, changes, expected_version=expected_version)


def delete_product(session: Session, actor: Actor, *, product_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session,
        actor,
        PRODUCTS,
        records.get(session, actor, PRODUCTS, product_id, access=RowAccess.WRITE),
        expected_version=expected_version,
    )
