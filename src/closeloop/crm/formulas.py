"""Formula fields on CRM records (GOV-2): what a formula may read on each record type, and running one.

The language itself (parser, type checker, SQL compiler) is in :mod:`closeloop.governance.formulas`
and knows no model; this module describes the real records to it as schemas:

- the record's own fields, by the names the API uses (an order's ``amount`` is its ``total``; an
  activity's ``type`` is its ``kind``);
- lists of related records for aggregates, each tied to the record *through the caller's scope
  door*, so an aggregate never counts a row of another organization, a deleted row, or a row the
  caller could not open — and each with the date ``days_ago`` counts from.

A formula that reads a field the caller may not read (an opportunity's ``margin`` for a rep) is
masked: :func:`evaluate` refuses it (403) instead of returning a value computed from hidden data.

**The seed example — 经销商库存周转与终端动销匹配度 (dealer inventory turnover vs. terminal
sell-through match).** A dealer buys from us (提货, *sell-in*: the dealer account's own orders) and
sells on to its terminals — hospitals, pharmacies (动销, *sell-through*). Closeloop keeps no stock
ledger, so both sides are read from orders: a dealer's terminal customers are the accounts whose
parent account (上级客户) is the dealer, and their orders are the sell-through the dealer reports.
The relations ``child_accounts`` and ``child_orders`` expose them, and then, per dealer::

    sell-through match (90 days)   SUM(child_orders.amount WHERE days_ago <= 90 AND status != "cancelled")
                                   / SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")
    stock still at the dealer      SUM(orders.amount WHERE status != "cancelled")
                                   - SUM(child_orders.amount WHERE status != "cancelled")
    inventory turnover (days)      stock / (90-day sell-through / 90)

A match well below 1 is stock piling up at the dealer (压货); the tests build these formulas on
real records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, cast, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, aliased

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc
from closeloop.core.errors import Forbidden, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.quotes.models import Quote, QuoteLine
from closeloop.crm.tickets.models import Ticket
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause, visible
from closeloop.governance.fields import masked_fields
from closeloop.governance.formulas import (
    Checked,
    Compiled,
    Field,
    FieldIdentity,
    FormulaError,
    FormulaSchema,
    FormulaType,
    Relation,
    Span,
    check_formula,
    compile_formula,
    evaluate_reference,
    field_of_column,
)
from closeloop.governance.formulas import plan as formula_plan
from closeloop.governance.formulas.sql import AsBoolean, AsDate
from closeloop.governance.permissions import require
from closeloop.org.models import Region

#: at most this many records in one preview
MAX_PREVIEW = 20


# --- fields -----------------------------------------------------------------------------------------


def _columns(model: Any, noun: str, names: dict[str, str]) -> dict[str, Field]:
    """Fields reading ``model``'s columns: formula name → column name."""
    return {
        name: field_of_column(name, getattr(model, column), noun=noun, source_field=column)
        for name, column in names.items()
    }


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


def _account_fields(model: Any = Account) -> dict[str, Field]:
    return _columns(
        model,
        "account",
        _same(
            "name",
            "industry",
            "size",
            "employees",
            "annual_revenue",
            "tier",
            "country",
            "province",
            "city",
            "credit_line",
            "currency",
            "year_established",
            "created_at",
            "updated_at",
        ),
    )


def _region_field(actor: Actor) -> Field:
    """The account's region by name (a correlated lookup, within the caller's organization)."""

    def column() -> ColumnElement[Any]:
        return (
            select(Region.name)
            .where(Region.id == Account.region_id, tenant_clause(actor.organization_id, Region))
            .scalar_subquery()
        )

    return Field("region", FormulaType.TEXT, column, ("account", "region_id"))


@lru_cache(maxsize=1)
def _field_sets() -> dict[str, dict[str, Field]]:
    """Every record type's own fields (they depend on no caller, so they are built once)."""
    return {
        "account": _account_fields(),
        "opportunity": _columns(
            Opportunity,
            "opportunity",
            {
                **_same("name", "amount", "margin", "stage", "currency", "lost_reason"),
                **_same("opened_at", "closed_at", "stage_changed_at", "created_at", "updated_at"),
                "expected_close": "expected_close_date",
            },
        ),
        "lead": _columns(
            Lead,
            "lead",
            _same(
                "name",
                "company",
                "title",
                "email",
                "phone",
                "mobile",
                "source",
                "status",
                "industry",
                "received_at",
                "converted_at",
                "created_at",
                "updated_at",
            ),
        ),
        "order": _columns(
            Order,
            "order",
            {**_same("number", "status", "currency", "ordered_at", "created_at", "updated_at"), "amount": "total"},
        ),
        "contact": _columns(
            Contact,
            "contact",
            _same(
                "name",
                "title",
                "title_confirmed_on",
                "department",
                "decision_role",
                "email",
                "phone",
                "mobile",
                "wechat",
                "created_at",
                "updated_at",
            ),
        ),
        "quote": _columns(
            Quote,
            "quote",
            _same(
                "number",
                "status",
                "valid_until",
                "currency",
                "subtotal",
                "discount_amount",
                "total",
                "margin",
                "created_at",
                "updated_at",
            ),
        ),
        "activity": _columns(
            Activity,
            "activity",
            {
                **_same("kind", "direction", "subject", "occurred_at", "is_replied", "replied_at"),
                **_same("duration_minutes", "outcome", "created_at"),
                "type": "kind",
            },
        ),
        "ticket": _columns(
            Ticket, "ticket", _same("subject", "status", "priority", "opened_at", "resolved_at", "created_at")
        ),
        "stage_change": _columns(
            StageChange, "stage_change", _same("from_stage", "to_stage", "changed_at", "duration_seconds")
        ),
        "order_line": _columns(
            OrderLine, "order_line", _same("description", "quantity", "unit_price", "amount", "position")
        ),
        "quote_line": _columns(
            QuoteLine,
            "quote_line",
            _same("description", "quantity", "unit_price", "discount_percent", "amount", "position"),
        ),
    }


def _related(noun: str, custom: Mapping[str, Field] | None = None) -> FormulaSchema:
    """A related record's schema (its own fields and its custom fields; aggregates do not nest)."""
    return FormulaSchema(noun, {**_field_sets()[noun], **(custom or {})})


# --- custom fields ------------------------------------------------------------------------------------

#: custom field types a formula reads, and the formula type each gives
CUSTOM_TYPES = {
    "number": FormulaType.NUMBER,
    "money": FormulaType.NUMBER,
    "date": FormulaType.DATE,
    "text": FormulaType.TEXT,
    "choice": FormulaType.TEXT,
    "boolean": FormulaType.BOOLEAN,
}


@dataclass(frozen=True, slots=True)
class CustomInput:
    """A custom field as formulas may read it (decoupled from :mod:`closeloop.crm.customfields`,
    which builds on this module)."""

    name: str
    field_type: str
    label: str = ""


def custom_field(model: Any, noun: str, definition: CustomInput) -> Field:
    """``custom.<name>`` of ``model``'s JSON document as a typed formula field.

    Money is read as whole cents (the stored double times 100, rounded: a value below 10^13 with two
    decimals is within a hair of its integer, so both databases round it alike) and scaled like a
    money column; numbers as doubles; dates from their ``YYYY-MM-DD`` text; choices by value.
    """
    kind = CUSTOM_TYPES[definition.field_type]
    key = "custom." + definition.name

    def column() -> ColumnElement[Any]:
        element = model.custom[definition.name]
        if definition.field_type == "money":
            return cast(func.round(element.as_float() * 100), BigInteger())
        if kind is FormulaType.NUMBER:
            return element.as_float()  # type: ignore[no-any-return]
        if kind is FormulaType.DATE:
            return AsDate(element.as_string())
        if kind is FormulaType.BOOLEAN:
            return AsBoolean(element.as_boolean())
        return element.as_string()  # type: ignore[no-any-return]

    return Field(
        key,
        kind,
        column,
        (noun, key),
        scale=2 if definition.field_type == "money" else 0,
        description=definition.label,
    )


def _custom_inputs(session: Session | None, organization_id: int, noun: str) -> list[CustomInput]:
    """The live custom fields of ``noun`` a formula may read (formula fields are not: formulas do not
    nest, so lineage stays a simple graph)."""
    if session is None or not hasattr(_model_of(noun), "custom"):
        return []
    from closeloop.crm import customfields

    return [
        CustomInput(d.name, d.field_type.value, d.label_en)
        for d in customfields.definitions(session, organization_id, noun)
        if d.field_type.value in CUSTOM_TYPES
    ]


def _custom_fields(session: Session | None, organization_id: int, noun: str, model: Any) -> dict[str, Field]:
    return {
        "custom." + item.name: custom_field(model, noun, item)
        for item in _custom_inputs(session, organization_id, noun)
    }


# --- record types -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaRecord:
    """A record type formulas can be computed on."""

    noun: str
    model: Any
    relations: Callable[[Actor], dict[str, Relation]]


def _relation(
    actor: Actor,
    name: str,
    noun: str,
    model: Any,
    link: ColumnElement[bool],
    age_field: str | None,
    description: str,
    custom: Mapping[str, Field] | None = None,
) -> Relation:
    """``model``'s rows tied to the record by ``link``, and only those ``actor`` may see."""
    return Relation(
        name=name,
        schema=_related(noun, custom),
        correlate=lambda: and_(link, visibility_clause(actor, model, access=RowAccess.READ)),
        age_field=age_field,
        description=description,
    )


def _account_relations(actor: Actor) -> dict[str, Relation]:
    child = aliased(Account, name="child_account")
    children = (
        select(child.id)
        .where(child.parent_account_id == Account.id, visibility_clause(actor, child, access=RowAccess.READ))
        .correlate(Account)
    )

    relations = [
        _relation(
            actor, "orders", "order", Order, Order.account_id == Account.id, "ordered_at", "the account's orders"
        ),
        _relation(
            actor,
            "opportunities",
            "opportunity",
            Opportunity,
            Opportunity.account_id == Account.id,
            "opened_at",
            "the account's opportunities",
        ),
        _relation(
            actor,
            "activities",
            "activity",
            Activity,
            Activity.account_id == Account.id,
            "occurred_at",
            "calls, emails, visits … with the account",
        ),
        _relation(
            actor,
            "contacts",
            "contact",
            Contact,
            Contact.account_id == Account.id,
            "created_at",
            "people at the account",
        ),
        _relation(
            actor, "quotes", "quote", Quote, Quote.account_id == Account.id, "created_at", "quotes to the account"
        ),
        _relation(actor, "tickets", "ticket", Ticket, Ticket.account_id == Account.id, "opened_at", "service tickets"),
        Relation(
            name="child_accounts",
            schema=FormulaSchema("account", _account_fields(child)),
            correlate=lambda: and_(
                child.parent_account_id == Account.id, visibility_clause(actor, child, access=RowAccess.READ)
            ),
            age_field="created_at",
            description="accounts whose parent account is this one (a dealer's terminal customers)",
        ),
        _relation(
            actor,
            "child_orders",
            "order",
            Order,
            Order.account_id.in_(children),
            "ordered_at",
            "orders of the child accounts (a dealer's reported sell-through)",
        ),
    ]
    return {relation.name: relation for relation in relations}


def _opportunity_relations(actor: Actor) -> dict[str, Relation]:
    relations = [
        _relation(
            actor,
            "activities",
            "activity",
            Activity,
            Activity.opportunity_id == Opportunity.id,
            "occurred_at",
            "touches about the deal",
        ),
        _relation(
            actor, "quotes", "quote", Quote, Quote.opportunity_id == Opportunity.id, "created_at", "quotes of the deal"
        ),
        _relation(
            actor, "orders", "order", Order, Order.opportunity_id == Opportunity.id, "ordered_at", "orders of the deal"
        ),
        _relation(
            actor,
            "stage_changes",
            "stage_change",
            StageChange,
            StageChange.opportunity_id == Opportunity.id,
            "changed_at",
            "the deal's stage history",
        ),
    ]
    return {relation.name: relation for relation in relations}


def _single(
    name: str, noun: str, model: Any, link: Callable[[], ColumnElement[bool]], age: str | None
) -> Callable[[Actor], dict[str, Relation]]:
    def build(actor: Actor) -> dict[str, Relation]:
        return {name: _relation(actor, name, noun, model, link(), age, "")}

    return build


RECORDS: dict[str, FormulaRecord] = {
    record.noun: record
    for record in (
        FormulaRecord("account", Account, _account_relations),
        FormulaRecord("opportunity", Opportunity, _opportunity_relations),
        FormulaRecord(
            "lead",
            Lead,
            _single("activities", "activity", Activity, lambda: Activity.lead_id == Lead.id, "occurred_at"),
        ),
        FormulaRecord(
            "order", Order, _single("lines", "order_line", OrderLine, lambda: OrderLine.order_id == Order.id, None)
        ),
        FormulaRecord(
            "contact",
            Contact,
            _single("activities", "activity", Activity, lambda: Activity.contact_id == Contact.id, "occurred_at"),
        ),
        FormulaRecord(
            "quote", Quote, _single("lines", "quote_line", QuoteLine, lambda: QuoteLine.quote_id == Quote.id, None)
        ),
    )
}

#: the permission that lets a caller read each kind of record a formula may read
READ_PERMISSION = {
    "account": "accounts:read",
    "opportunity": "opportunities:read",
    "lead": "leads:read",
    "order": "orders:read",
    "contact": "contacts:read",
    "quote": "quotes:read",
    "activity": "activities:read",
    "ticket": "tickets:read",
    "stage_change": "opportunities:read",
    "order_line": "orders:read",
    "quote_line": "quotes:read",
}


def record_types() -> list[str]:
    """The nouns formulas can be computed on."""
    return sorted(RECORDS)


def _record(noun: str) -> FormulaRecord:
    record = RECORDS.get(noun)
    if record is None:
        raise ValidationFailed.one(
            "record_type", f"formulas are computed on {', '.join(record_types())}, not {noun!r}", "invalid_choice"
        )
    return record


def _model_of(noun: str) -> Any:
    return {**{r.noun: r.model for r in RECORDS.values()}, "activity": Activity}.get(noun)


def _with_custom(session: Session | None, actor: Actor, relation: Relation) -> Relation:
    """``relation`` whose related records' custom fields are readable too (when they have any)."""
    model = _RELATION_MODELS.get((relation.schema.noun, relation.name))
    if model is None:
        return relation
    custom = _custom_fields(session, actor.organization_id, relation.schema.noun, model)
    if not custom:
        return relation
    return Relation(
        name=relation.name,
        schema=FormulaSchema(relation.schema.noun, {**relation.schema.fields, **custom}, relation.schema.relations),
        correlate=relation.correlate,
        age_field=relation.age_field,
        description=relation.description,
    )


#: (related noun, relation name) → the model its custom fields are read from, for relations whose
#: rows are the plain table (``child_accounts`` reads an alias and keeps its stored fields only)
_RELATION_MODELS: dict[tuple[str, str], Any] = {
    ("opportunity", "opportunities"): Opportunity,
    ("activity", "activities"): Activity,
    ("contact", "contacts"): Contact,
}


def schema_for(actor: Actor, noun: str, session: Session | None = None) -> FormulaSchema:
    """What a formula on ``noun`` may read, for ``actor`` (relations see through its scope door).
    With a ``session``, the organization's custom fields too (``custom.<name>``, on the record and
    on related records)."""
    record = _record(noun)
    fields = dict(_field_sets()[noun])
    if noun == "account":
        fields["region"] = _region_field(actor)
    fields.update(_custom_fields(session, actor.organization_id, noun, record.model))
    relations = {name: _with_custom(session, actor, relation) for name, relation in record.relations(actor).items()}
    return FormulaSchema(noun, fields, relations)


# --- checking and running ---------------------------------------------------------------------------


def _require_sources(actor: Actor, checked: Checked) -> None:
    for noun in sorted(checked.sources):
        require(actor, READ_PERMISSION[noun])


def check(actor: Actor, noun: str, text: str, session: Session | None = None) -> Checked:
    """Parse and type-check a formula on ``noun`` (:class:`FormulaError` with the position if bad);
    the caller must be allowed to read every kind of record it reads. Without a ``session`` it
    knows no custom field."""
    require(actor, READ_PERMISSION[_record(noun).noun])
    checked = check_formula(text, schema_for(actor, noun, session))
    _require_sources(actor, checked)
    return checked


def compile_for(actor: Actor, noun: str, text: str, session: Session | None = None) -> Compiled:
    """The formula compiled for ``actor``: usable as a column of a list, a filter
    (``compiled.as_filter()``), a dashboard measure or a rule's condition over ``noun``'s table."""
    require(actor, READ_PERMISSION[_record(noun).noun])
    compiled = compile_formula(text, schema_for(actor, noun, session))
    _require_sources(actor, compiled)
    return compiled


def masked_inputs(actor: Actor, checked: Checked, session: Session | None = None) -> list[FieldIdentity]:
    """The formula's inputs ``actor`` may not read (``[]`` when it may see the formula's value):
    under the organization's configured field masks when a ``session`` is given (custom-field
    inputs included), else the built-in ones."""
    if session is None:
        return checked.masked_inputs(lambda noun: masked_fields(None, actor, noun))
    from closeloop.crm import records

    return checked.masked_inputs(lambda noun: records.masked(session, actor, noun))


def masked_for(actor: Actor, checked: Checked, session: Session | None = None) -> bool:
    """A formula is masked for whoever cannot see one of its inputs."""
    return bool(masked_inputs(actor, checked, session))


def refuse_masked(actor: Actor, checked: Checked, session: Session | None = None) -> None:
    """403 naming the hidden input when ``actor`` may not see the formula's value."""
    hidden = masked_inputs(actor, checked, session)
    if hidden:
        names = ", ".join(f"{noun}.{field}" for noun, field in hidden)
        error = Forbidden(
            f"Your role ({actor.role}) may not read {names}, which this formula reads", field_name="expression"
        )
        error.extra = {"masked_inputs": [f"{noun}.{field}" for noun, field in hidden]}
        raise error


def evaluate(
    session: Session,
    actor: Actor,
    noun: str,
    text: str,
    *,
    ids: Sequence[int] | None = None,
    limit: int = MAX_PREVIEW,
) -> list[tuple[int, Any]]:
    """``(id, value)`` of the formula for records of ``noun`` that ``actor`` can see: those of ``ids``
    (others are left out), or the first ``limit`` by id. A masked formula is refused (403)."""
    return values_of(session, actor, noun, compile_for(actor, noun, text, session), ids=ids, limit=limit)


def values_of(
    session: Session,
    actor: Actor,
    noun: str,
    compiled: Compiled,
    *,
    ids: Sequence[int] | None = None,
    limit: int = MAX_PREVIEW,
) -> list[tuple[int, Any]]:
    """:func:`evaluate` for a formula already compiled with :func:`compile_for` for ``actor``."""
    refuse_masked(actor, compiled, session)
    model = _record(noun).model
    statement = visible(actor, model, access=RowAccess.READ).with_only_columns(
        model.id, compiled.expression.label("value")
    )
    if ids is not None:
        statement = statement.where(model.id.in_(list(ids)))
    statement = statement.order_by(model.id).limit(limit)
    try:
        rows = session.execute(statement).all()
    except DataError:
        raise _out_of_range(compiled.text) from None
    values = [(int(row[0]), row[1]) for row in rows]
    for _, value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise _out_of_range(compiled.text)
    return values


def _out_of_range(text: str) -> FormulaError:
    return FormulaError("a value of this formula is out of range (beyond ±1.7976931348623157e308)", Span.at(text, 0))


# --- as of a past moment (rule backtests) -----------------------------------------------------------

#: ``(noun, ids)`` → each record as it was at the moment asked about (``None``: it did not exist yet)
Rewind = Callable[[str, Sequence[int]], Mapping[int, Any]]


def _stored_value(session: Session, actor: Actor, field: Field, record: Any) -> Any:
    """What ``field`` reads on ``record`` (a row or a rebuilt snapshot of one), typed as the SQL reads it."""
    if field.name.startswith("custom."):
        value = (getattr(record, "custom", None) or {}).get(field.name[len("custom.") :])
        if value is None:
            return None
        try:
            if field.type is FormulaType.NUMBER:
                # money is read as whole cents, like the SQL; other numbers as doubles
                return Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP) if field.scale else float(value)
            if field.type is FormulaType.DATE:
                return value if isinstance(value, date) else date.fromisoformat(str(value))
            if field.type is FormulaType.BOOLEAN:
                return bool(value)
        except (ValueError, ArithmeticError):
            return None
        return str(value)
    if field.source == ("account", "region_id"):  # the account's region, by name
        region_id = getattr(record, "region_id", None)
        if region_id is None:
            return None
        return session.scalar(
            select(Region.name).where(tenant_clause(actor.organization_id, Region), Region.id == region_id)
        )
    return getattr(record, field.source[1], None)


def _relations_read(plan: Any) -> dict[str, Relation]:
    found: dict[str, Relation] = {}
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, formula_plan.AggregateOf):
            found[node.relation.name] = node.relation
        stack.extend(formula_plan.children(node))
    return found


def _id_of_rows(relation: Relation) -> Any:
    """The id column of the table (or alias) a relation's rows come from."""
    for name, field in relation.schema.fields.items():
        if name.startswith("custom."):
            continue
        column = field.column()
        table = getattr(getattr(column, "expression", column), "table", None)
        if table is not None and "id" in table.c:
            return table.c.id
    raise ValueError(f"relation {relation.name} has no id column")  # pragma: no cover - every relation has one


def value_as_of(
    session: Session,
    actor: Actor,
    noun: str,
    checked: Checked,
    record: Any,
    moment: datetime,
    *,
    rewind: Rewind | None = None,
    rewindable: frozenset[str] = frozenset(),
) -> Any:
    """The formula's value on ``record`` *as it was at* ``moment``: ``record`` is the record rebuilt
    for that moment (a backtest's snapshot from the audit trail), TODAY() and ``days_ago`` count from
    that day, and an aggregate reads the related rows that existed then — rebuilt through ``rewind``
    for the kinds in ``rewindable``, else as stored, created up to ``moment``. Evaluated by the
    language's reference evaluator (the meaning the SQL is tested against), never by ``eval``."""
    refuse_masked(actor, checked, session)
    schema = schema_for(actor, noun, session)
    row = {name: _stored_value(session, actor, field, record) for name, field in schema.fields.items()}
    record_id = getattr(record, "id", None)
    model = _record(noun).model
    related: dict[str, list[dict[str, Any]]] = {}
    for name, relation in _relations_read(checked.plan).items():
        fields = relation.schema.fields
        statement = select(_id_of_rows(relation), *[field.column() for field in fields.values()]).where(
            relation.correlate(), model.id == record_id
        )
        stored = session.execute(statement).all()
        related_noun = relation.schema.noun
        then: Mapping[int, Any] = {}
        if rewind is not None and related_noun in rewindable:
            then = rewind(related_noun, [int(item[0]) for item in stored])
        rows: list[dict[str, Any]] = []
        for item in stored:
            if related_noun in rewindable and rewind is not None:
                past = then.get(int(item[0]))
                if past is None:
                    continue  # created after the moment
                rows.append({key: _stored_value(session, actor, field, past) for key, field in fields.items()})
                continue
            values: dict[str, Any] = {
                key: Decimal(value).scaleb(-field.scale)
                if key.startswith("custom.") and field.scale and value is not None
                else value
                for (key, field), value in zip(fields.items(), item[1:], strict=True)
            }
            created = values.get("created_at")
            if created is not None and as_utc(created) > as_utc(moment):
                continue
            rows.append(values)
        related[name] = rows
    return evaluate_reference(checked.plan, row, today=as_utc(moment).date(), related=related)
