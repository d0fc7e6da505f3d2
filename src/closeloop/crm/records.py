"""What every CRM record service shares: typed lookups through the scope door, validated writes
that audit themselves, filtered keyset listing, and the one serializer that applies field masks.

Aggregate services (``accounts/service.py`` …) call these with their :class:`RecordType`; the API,
the web pages, exports and search all read through :func:`serialize`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, Table, and_, bindparam, false, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.exc import StaleDataError

from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import (
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ReadOnly,
    UnknownParameters,
    ValidationFailed,
)
from closeloop.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Page
from closeloop.db.base import RecordModel
from closeloop.db.functions import json_list_holds
from closeloop.db.rawread import KeptRead
from closeloop.db.scope import (
    RowAccess,
    is_scoped,
    may_write,
    owner_may_write,
    parent_read_grants,
    scope_parameters,
    tenant_clause,
    visibility_clause,
    visibility_template,
    visible,
)
from closeloop.db.session import execute_core
from closeloop.db.types import ScaledDecimal
from closeloop.governance import fieldstamp
from closeloop.governance.audit import service as audit
from closeloop.governance.fields import check_writable, masked_fields, readable_fields
from closeloop.governance.permissions import require
from closeloop.org.models import Region, User

M = TypeVar("M", bound=RecordModel)


class Kind(StrEnum):
    INT = "int"
    STR = "str"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"


_OPS_BY_KIND: dict[Kind, frozenset[str]] = {
    Kind.INT: frozenset({"eq", "ne", "in", "gt", "gte", "lt", "lte", "isnull"}),
    Kind.STR: frozenset({"eq", "ne", "in", "contains", "startswith", "isnull"}),
    Kind.DECIMAL: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    Kind.DATE: frozenset({"eq", "gt", "gte", "lt", "lte", "isnull"}),
    Kind.DATETIME: frozenset({"gt", "gte", "lt", "lte", "isnull"}),
    Kind.BOOL: frozenset({"eq", "isnull"}),
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A column that lists may filter and sort on."""

    kind: Kind
    choices: tuple[str, ...] | None = None
    sortable: bool = False


@dataclass(frozen=True, slots=True)
class Computed:
    """A read-only field computed in the database, selected together with the record's own columns.

    ``expression`` builds the SQL (lazily: it may refer to other tables); it is correlated to the
    record's table and must not depend on the caller. ``decode`` turns the database value into the
    field's value.
    """

    expression: Callable[[], ColumnElement[Any]]
    decode: Callable[[Any], Any] = lambda value: value


@dataclass(frozen=True, slots=True)
class CustomListField:
    """How lists filter and sort on one custom field (built by :mod:`closeloop.crm.customfields`)."""

    key: str
    kind: Kind
    operators: frozenset[str]
    expression: ColumnElement[Any]
    choices: tuple[str, ...] | None
    sortable: bool
    #: a multi-choice list: ``contains`` means "holds this choice"
    is_list: bool
    json_key: str
    #: the record's ``custom`` column
    document: ColumnElement[Any]
    #: a parsed filter value → the form stored in the JSON document
    to_sql: Callable[[Any], Any]


@dataclass(frozen=True)
class RecordType(Generic[M]):
    """How one kind of record is listed, referenced, serialized and guarded."""

    noun: str
    plural: str
    model: type[M]
    read_fields: tuple[str, ...]
    filters: Mapping[str, FieldSpec]
    #: field → noun of the record it points to; the target must be visible to the writer
    references: Mapping[str, str] = field(default_factory=dict)
    #: columns searched by ``q`` (case-insensitive substring)
    search_fields: tuple[str, ...] = ("name",)
    default_sort: str = "-id"
    #: read-only fields computed in the database (masked like any field)
    computed: Mapping[str, Computed] = field(default_factory=dict)
    #: extra keys added to the serialized forms of a batch of records given by id (e.g. an order's
    #: lines), one dict per id in order; it must apply field masks itself
    expand: Callable[[Session, Actor, Sequence[int]], list[dict[str, Any]]] | None = None

    @property
    def permission_prefix(self) -> str:
        return self.plural

    @property
    def customizable(self) -> bool:
        """Whether the record carries custom fields (a ``custom`` JSON document)."""
        return hasattr(self.model, "custom")

    @property
    def unique_fields(self) -> tuple[str, ...]:
        """Columns unique among an organization's live records, read from the model's unique indexes."""
        table: Table = self.model.__table__  # type: ignore[assignment]
        names: list[str] = []
        for index in table.indexes:
            columns = [column.name for column in index.columns if column.name != "organization_id"]
            if index.unique and len(columns) == 1:
                names.append(columns[0])
        return tuple(sorted(names))

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        column: InstrumentedAttribute[Any] = getattr(self.model, name)
        return column


_REGISTRY: dict[str, RecordType[Any]] = {}


def register(record_type: RecordType[M]) -> RecordType[M]:
    _REGISTRY[record_type.noun] = record_type
    return record_type


def record_type_for(noun: str) -> RecordType[Any]:
    return _REGISTRY[noun]


def all_record_types() -> list[RecordType[Any]]:
    return list(_REGISTRY.values())


# --- lookups ----------------------------------------------------------------------------------


def get(
    session: Session,
    actor: Actor,
    record_type: RecordType[M],
    record_id: int,
    *,
    access: RowAccess,
    lock: bool = False,
) -> M:
    """The record if ``actor`` may read it (``access=READ``) or change it (``WRITE``); otherwise
    *not found*, whether it exists elsewhere or not — except a record the actor may read but not
    change, which a WRITE lookup refuses as :class:`ReadOnly` (403: the actor can see it).

    ``lock`` takes the row lock first (``SELECT … FOR UPDATE`` on PostgreSQL), for changes that
    touch several records and must not interleave with a concurrent edit of this one.
    """
    require(actor, f"{record_type.plural}:read")
    model = record_type.model
    statement = visible(actor, model, access=access).where(model.id == record_id)
    record = session.scalar(statement.with_for_update() if lock else statement)
    if record is None:
        if access is RowAccess.WRITE and is_scoped(actor, model) and parent_read_grants(model):
            readable = select(model.id).where(
                visibility_clause(actor, model, access=RowAccess.READ), model.id == record_id
            )
            if session.scalar(readable) is not None:
                raise ReadOnly(record_type.noun, record_id)
        raise NotFound(record_type.noun, record_id)
    return record


def check_may_write(actor: Actor, record_type: RecordType[Any], record: Any) -> None:
    """Refuse (403, :class:`ReadOnly`) a change to a record outside ``actor``'s write scope, however
    it was found: the last wall before :func:`update` and :func:`delete` touch a row."""
    if not may_write(actor, record):
        raise ReadOnly(record_type.noun, record.id)


def may_write_item(actor: Actor, record_type: RecordType[Any], item: Mapping[str, Any]) -> bool:
    """Whether ``actor`` may change the record serialized as ``item`` (read through the read scope):
    what pages ask before they offer an edit. ``True`` when the owner is not in ``item``; the
    service decides then, as it always does."""
    owner_column: str | None = getattr(record_type.model, "__owner_column__", None)
    if owner_column is None or owner_column not in item:
        return True
    return owner_may_write(actor, record_type.model, item[owner_column])


def require_write(actor: Actor, record_type: RecordType[Any]) -> None:
    """Refuse (403) an actor who may not write ``record_type``. Services whose own checks read the
    database call it first, so a caller without the permission learns nothing from those checks."""
    require(actor, f"{record_type.plural}:write")


def check_references(session: Session, actor: Actor, record_type: RecordType[Any], values: Mapping[str, Any]) -> None:
    """Each referenced record must exist and be visible to ``actor`` (else 422 naming the field)."""
    problems: list[FieldProblem] = []
    for field_name, noun in record_type.references.items():
        target_id = values.get(field_name)
        if target_id is None:
            continue
        if noun == "user":
            statement = select(User.id).where(
                tenant_clause(actor.organization_id, User), User.id == target_id, User.is_active.is_(True)
            )
        elif noun == "region":
            statement = select(Region.id).where(tenant_clause(actor.organization_id, Region), Region.id == target_id)
        else:
            target = record_type_for(noun).model
            statement = select(target.id).where(
                visibility_clause(actor, target, access=RowAccess.READ), target.id == target_id
            )
        if session.scalar(statement) is None:
            problems.append(FieldProblem(field_name, f"no {noun} {target_id} that you can see", "not_found"))
    if problems:
        raise ValidationFailed(problems)


def check_unique(
    session: Session,
    actor: Actor,
    record_type: RecordType[Any],
    values: Mapping[str, Any],
    *,
    own_id: int | None = None,
) -> None:
    """No other live record of the organization may hold the same value of a unique field (409 naming it).

    The whole organization counts, not only what ``actor`` sees: the database's unique index does too.
    """
    model = record_type.model
    for field_name in record_type.unique_fields:
        value = values.get(field_name)
        if value is None:
            continue
        statement = select(model.id).where(
            tenant_clause(actor.organization_id, model), record_type.column(field_name) == value
        )
        if own_id is not None:
            statement = statement.where(model.id != own_id)
        if session.scalar(statement.limit(1)) is not None:
            raise Conflict(
                f"Another {record_type.noun.replace('_', ' ')} already has {field_name} '{value}'",
                code="duplicate",
                field_name=field_name,
            )


def check_owner(actor: Actor, owner_id: int | None) -> None:
    """An actor may hand a record only to someone inside its own reach."""
    if owner_id is None or actor.scope is RowScope.ALL:
        return
    if owner_id not in actor.owner_ids:
        raise ValidationFailed.one("owner_id", "you can only assign records to yourself or your team", "out_of_scope")


def snapshot(record: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in fields}


def _as_stored(record_type: RecordType[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with decimals at their column's scale, so a record reads the same before and after
    a round trip through the database (``"0"`` becomes ``"0.00"`` at once, not on the next read)."""
    columns = record_type.model.__table__.c
    stored = dict(values)
    for name, value in values.items():
        if isinstance(value, Decimal) and name in columns and isinstance(columns[name].type, ScaledDecimal):
            stored[name] = columns[name].type.normalize(value)
    return stored


def _writable_columns(record_type: RecordType[Any]) -> tuple[str, ...]:
    protected = {"id", "version", "created_at", "updated_at", "deleted_at", "organization_id"}
    return tuple(name for name in record_type.read_fields if name not in protected)


# --- writes -----------------------------------------------------------------------------------


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-concurrency race into *precondition failed*."""
    try:
        session.flush()
    except StaleDataError:
        raise PreconditionFailed() from None


def create(
    session: Session,
    actor: Actor,
    record_type: RecordType[M],
    values: Mapping[str, Any],
    *,
    action: str | None = None,
    related: Mapping[str, Any] | None = None,
) -> M:
    """Insert a record with ``values`` (already validated by its schema) and audit it.

    ``related`` names what the caller stores beside the row (its lines, its links), so that the
    audit entry of the creation tells the whole record, not just its columns.
    """
    require(actor, f"{record_type.plural}:write")
    check_writable(session, actor, record_type.noun, [k for k, v in values.items() if v is not None])
    model = record_type.model
    values = _as_stored(record_type, values)
    owner_column = getattr(model, "__owner_column__", None)
    if owner_column is not None:
        if (
            owner_column not in values
            and actor.user_id is not None
            and not getattr(model, "__unowned_visible__", False)
        ):
            values[owner_column] = actor.user_id
        check_owner(actor, values.get(owner_column))
    check_references(session, actor, record_type, values)
    check_unique(session, actor, record_type, values)
    custom_changes: dict[str, Any] = {}
    if record_type.customizable:
        from closeloop.crm import customfields

        values["custom"] = customfields.clean(session, actor, record_type.noun, values.get("custom"), None)
        custom_changes = {key: after for key, (_, after) in customfields.changes(None, values["custom"]).items()}
    record = model(organization_id=actor.organization_id, **values)
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor,
        action or f"{record_type.noun}.created",
        subject_type=record_type.noun,
        subject_id=record.id,
        changes=audit.diff(
            {},
            {k: v for k, v in snapshot(record, _writable_columns(record_type)).items() if v is not None}
            | custom_changes
            | {k: v for k, v in (related or {}).items() if v},
        ),
    )
    return record


def update(
    session: Session,
    actor: Actor,
    record_type: RecordType[M],
    record: M,
    changes: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    action: str | None = None,
) -> M:
    """Apply ``changes`` to ``record`` (seen through :func:`get`); audit what actually changed.

    ``expected_version`` is the version the caller last read (If-Match); a newer one means someone
    else changed the record first, and nothing is written.
    """
    require(actor, f"{record_type.plural}:write")
    check_may_write(actor, record_type, record)
    check_writable(session, actor, record_type.noun, changes.keys())
    changes = _as_stored(record_type, changes)
    custom_before: dict[str, Any] | None = None
    if "custom" in changes and record_type.customizable:
        from closeloop.crm import customfields

        custom_before = dict(getattr(record, "custom", None) or {})
        changes["custom"] = customfields.clean(session, actor, record_type.noun, changes["custom"], custom_before)
    columns = record_type.model.__table__.c
    for name, value in changes.items():
        if value is None and name in columns and not columns[name].nullable:
            raise ValidationFailed.one(name, "may not be empty", "required")
    if expected_version is not None and record.version != expected_version:
        raise PreconditionFailed()
    owner_column = getattr(record_type.model, "__owner_column__", None)
    if owner_column is not None and owner_column in changes:
        check_owner(actor, changes[owner_column])
    check_references(session, actor, record_type, changes)
    check_unique(session, actor, record_type, changes, own_id=record.id)
    before = snapshot(record, changes.keys())
    for name, value in changes.items():
        setattr(record, name, value)
    difference = audit.diff(before, snapshot(record, changes.keys()))
    if custom_before is not None:
        from closeloop.crm import customfields

        difference.pop("custom", None)
        difference.update(customfields.changes(custom_before, changes["custom"]))
    if not difference:
        return record
    flush(session)
    audit.record(
        session,
        actor,
        action or f"{record_type.noun}.updated",
        subject_type=record_type.noun,
        subject_id=record.id,
        changes=difference,
    )
    return record


def delete(
    session: Session, actor: Actor, record_type: RecordType[M], record: M, *, expected_version: int | None = None
) -> None:
    """Soft-delete: the record disappears from every query but stays restorable and in history."""
    require(actor, f"{record_type.plural}:delete")
    check_may_write(actor, record_type, record)
    if expected_version is not None and record.version != expected_version:
        raise PreconditionFailed()
    record.deleted_at = utcnow()
    flush(session)
    audit.record(
        session,
        actor,
        f"{record_type.noun}.deleted",
        subject_type=record_type.noun,
        subject_id=record.id,
        changes={"deleted_at": [None, audit.json_safe(record.deleted_at)]},
    )


def restore(session: Session, actor: Actor, record_type: RecordType[M], record_id: int) -> M:
    """Bring back a soft-deleted record the actor could see before."""
    require(actor, f"{record_type.plural}:delete")
    model = record_type.model
    statement = visible(actor, model, access=RowAccess.WRITE, include_deleted=True).where(
        model.id == record_id, model.deleted_at.is_not(None)
    )
    record = session.scalar(statement)
    if record is None:
        raise NotFound(f"deleted {record_type.noun}", record_id)
    check_unique(session, actor, record_type, snapshot(record, record_type.unique_fields), own_id=record.id)
    previous = record.deleted_at
    record.deleted_at = None
    session.flush()
    audit.record(
        session,
        actor,
        f"{record_type.noun}.restored",
        subject_type=record_type.noun,
        subject_id=record.id,
        changes={"deleted_at": [audit.json_safe(previous), None]},
    )
    return record


# --- listing ----------------------------------------------------------------------------------

RESERVED_PARAMETERS = frozenset({"limit", "cursor", "sort", "q", "format"})
_BUILTIN_SORTS = {"id": Kind.INT, "created_at": Kind.DATETIME, "updated_at": Kind.DATETIME}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_value(kind: Kind, raw: str, *, parameter: str, choices: tuple[str, ...] | None = None) -> Any:
    """Turn a query-string value into a typed value, or say precisely what is wrong with it."""
    raw = raw.strip()
    try:
        if kind is Kind.INT:
            return int(raw)
        if kind is Kind.DECIMAL:
            value = Decimal(raw)
            if not value.is_finite():
                raise ValueError
            return value
        if kind is Kind.DATE:
            return date.fromisoformat(raw)
        if kind is Kind.DATETIME:
            return as_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        if kind is Kind.BOOL:
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
    except (ValueError, InvalidOperation, OverflowError):
        expected = {
            Kind.INT: "an integer",
            Kind.DECIMAL: "a number",
            Kind.DATE: "a date (YYYY-MM-DD)",
            Kind.DATETIME: "an ISO 8601 date-time",
            Kind.BOOL: "true or false",
        }[kind]
        raise ValidationFailed.one(parameter, f"'{raw}' is not {expected}") from None
    if choices is not None and raw not in choices:
        raise ValidationFailed.one(parameter, f"'{raw}' is not one of: {', '.join(choices)}")
    return raw


def _storable(record_type: RecordType[Any], name: str, value: Any, *, parameter: str) -> Any:
    """``value`` if the column ``name`` could hold it; else a 422 naming ``parameter`` (a comparison
    with an out-of-range number would fail in the database instead of matching nothing)."""
    column_type = record_type.model.__table__.c[name].type
    if isinstance(value, str) and "\x00" in value:
        raise ValidationFailed.one(parameter, "must not contain NUL characters", "invalid_character")
    if isinstance(value, Decimal) and isinstance(column_type, ScaledDecimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -column_type.scale:
            raise ValidationFailed.one(parameter, f"'{value}' has more than {column_type.scale} decimal places")
        if abs(value) * Decimal(10) ** column_type.scale >= 2**63:
            raise ValidationFailed.one(parameter, f"'{value}' is out of range")
    elif isinstance(value, int) and not isinstance(value, bool) and isinstance(column_type, Integer):
        bits = 63 if isinstance(column_type, BigInteger) else 31
        if not -(2**bits) <= value < 2**bits:
            raise ValidationFailed.one(parameter, f"'{value}' is out of range")
    return value


def _text_match(column: Any, op: str, raw: str) -> ColumnElement[bool]:
    """``contains`` / ``startswith``, case-insensitive, with the LIKE wildcards in ``raw`` taken literally."""
    needle = raw.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{needle}%" if op == "contains" else f"{needle}%"
    result: ColumnElement[bool] = column.ilike(pattern, escape="\\")
    return result


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    comparisons: dict[str, Callable[[Any], ColumnElement[bool]]] = {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "gt": column.__gt__,
        "gte": column.__ge__,
        "lt": column.__lt__,
        "lte": column.__le__,
    }
    return comparisons[op](value)


def _custom_filter_clause(field_spec: CustomListField, parameter: str, op: str, raw: str) -> ColumnElement[bool]:
    if op not in field_spec.operators:
        allowed = ", ".join(sorted(field_spec.operators))
        raise ValidationFailed.one(
            parameter, f"operator '{op}' does not apply to {field_spec.key} (use: {allowed})", "unknown"
        )
    column = field_spec.expression
    if op == "isnull":
        return column.is_(None) if parse_value(Kind.BOOL, raw, parameter=parameter) else column.is_not(None)

    def parsed(text: str) -> Any:
        value = parse_value(field_spec.kind, text, parameter=parameter, choices=field_spec.choices)
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed.one(parameter, "must not contain NUL characters", "invalid_character")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise ValidationFailed.one(parameter, f"'{value}' is out of range")
        return field_spec.to_sql(value)

    if field_spec.is_list:  # "contains": the list holds this choice
        return json_list_holds(field_spec.document, literal(field_spec.json_key), literal(parsed(raw)))
    if op == "in":
        values = [parsed(part) for part in raw.split(",") if part.strip()]
        if not values:
            raise ValidationFailed.one(parameter, "needs at least one value")
        return column.in_(values)
    if op in {"contains", "startswith"}:
        return _text_match(column, op, raw)
    return _compare(column, op, parsed(raw))


#: the query parameters of a record list besides its filters
LIST_PARAMETERS = ("limit", "cursor", "sort", "q")


def unknown_filter(record_type: RecordType[Any], parameter: str, filters: Iterable[str]) -> UnknownParameters:
    """The refusal of a list's query parameter that is no filter the caller may use: the same
    problem as any endpoint's unknown parameter, listing the list's parameters and ``filters``
    (custom fields are ``custom.<name>``; operators are suffixes: ``amount__gte``)."""
    return UnknownParameters(
        [parameter], [*LIST_PARAMETERS, *filters], reason=f"is not a filter of {record_type.plural}"
    )


def _filter_clause(
    session: Session,
    record_type: RecordType[Any],
    actor: Actor,
    parameter: str,
    raw: str,
    custom: Mapping[str, CustomListField] | None = None,
) -> ColumnElement[bool]:
    name, _, op = parameter.partition("__")
    op = op or "eq"
    if custom is not None and name in custom:
        return _custom_filter_clause(custom[name], parameter, op, raw)
    spec = record_type.filters.get(name)
    if spec is None:
        hidden = masked_fields(session, actor, record_type.noun)  # a masked field's name is not told either
        known = [name for name in [*record_type.filters, *(custom or {})] if name not in hidden]
        raise unknown_filter(record_type, parameter, known)
    if name in masked_fields(session, actor, record_type.noun):
        raise Forbidden(f"Your role ({actor.role}) may not filter on {record_type.noun}.{name}", field_name=parameter)
    if op not in _OPS_BY_KIND[spec.kind]:
        allowed = ", ".join(sorted(_OPS_BY_KIND[spec.kind]))
        raise ValidationFailed.one(parameter, f"operator '{op}' does not apply to {name} (use: {allowed})", "unknown")
    column = record_type.column(name)
    if op == "isnull":
        return column.is_(None) if parse_value(Kind.BOOL, raw, parameter=parameter) else column.is_not(None)
    if op == "in":
        values = [
            _storable(
                record_type,
                name,
                parse_value(spec.kind, part, parameter=parameter, choices=spec.choices),
                parameter=parameter,
            )
            for part in raw.split(",")
            if part.strip()
        ]
        if not values:
            raise ValidationFailed.one(parameter, "needs at least one value")
        return column.in_(values)
    if op in {"contains", "startswith"}:
        return _text_match(column, op, raw)
    value = _storable(
        record_type, name, parse_value(spec.kind, raw, parameter=parameter, choices=spec.choices), parameter=parameter
    )
    return _compare(column, op, value)


@dataclass(frozen=True, slots=True)
class SortSpec:
    name: str
    kind: Kind
    descending: bool
    nullable: bool
    #: a custom field's sort: its value expression and how a cursor value is stored
    custom: CustomListField | None = None

    @property
    def text(self) -> str:
        return f"-{self.name}" if self.descending else self.name


def _parse_sort(
    session: Session,
    record_type: RecordType[Any],
    actor: Actor,
    raw: str | None,
    custom: Mapping[str, CustomListField] | None = None,
) -> SortSpec:
    text = (raw or record_type.default_sort).strip()
    descending = text.startswith("-")
    name = text.lstrip("-+")
    spec = record_type.filters.get(name)
    if custom is not None and name in custom and custom[name].sortable:
        return SortSpec(name, custom[name].kind, descending, True, custom[name])
    if name in _BUILTIN_SORTS:
        kind = _BUILTIN_SORTS[name]
    elif spec is not None and spec.sortable:
        kind = spec.kind
    else:
        sortable = sorted(
            {
                *_BUILTIN_SORTS,
                *(n for n, s in record_type.filters.items() if s.sortable),
                *(n for n, c in (custom or {}).items() if c.sortable),
            }
        )
        raise ValidationFailed.one("sort", f"cannot sort {record_type.plural} by '{name}' (use: {', '.join(sortable)})")
    if name in masked_fields(session, actor, record_type.noun):
        raise Forbidden(f"Your role ({actor.role}) may not sort on {record_type.noun}.{name}", field_name="sort")
    nullable = bool(record_type.model.__table__.c[name].nullable)
    return SortSpec(name, kind, descending, nullable)


def build_query(
    session: Session,
    actor: Actor,
    record_type: RecordType[M],
    params: Mapping[str, str],
    *,
    columns: Sequence[str] | None = None,
    custom: Mapping[str, CustomListField] | None = None,
) -> tuple[Select[Any], SortSpec]:
    """The visible, filtered and ordered query for a list, export or search (no paging yet): of
    whole records, or of the named ``columns`` only. ``custom``: the custom list fields, when the
    caller has them already (formula fields are compiled once per request, not twice)."""
    require(actor, f"{record_type.plural}:read")
    if custom is None:
        custom = _custom_list_fields(session, actor, record_type)
    if columns is None:
        statement: Select[Any] = visible(actor, record_type.model, access=RowAccess.READ)
    else:
        statement = select(*_selectable(record_type, columns, custom)).where(
            visibility_clause(actor, record_type.model, access=RowAccess.READ)
        )
    for parameter, raw in params.items():
        if parameter in RESERVED_PARAMETERS:
            continue
        statement = statement.where(_filter_clause(session, record_type, actor, parameter, raw, custom))
    query = (params.get("q") or "").strip()
    if query:
        needle = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # a masked field is not searched: a match would reveal what it holds
        hidden = masked_fields(session, actor, record_type.noun)
        searched = [name for name in record_type.search_fields if name not in hidden]
        statement = statement.where(
            or_(false(), *(record_type.column(name).ilike(needle, escape="\\") for name in searched))
        )
    sort = _parse_sort(session, record_type, actor, params.get("sort"), custom)
    return _ordered(record_type, statement, sort), sort


def _ordered(record_type: RecordType[Any], statement: Select[Any], sort: SortSpec) -> Select[Any]:
    """``statement`` in ``sort``'s order, ties broken by id (the cursor's order)."""
    column: Any = sort.custom.expression if sort.custom else record_type.column(sort.name)
    id_column = record_type.model.id
    ordering = column.desc() if sort.descending else column.asc()
    if sort.nullable:
        ordering = ordering.nulls_last()
    if sort.name == "id":
        return statement.order_by(ordering)
    return statement.order_by(ordering, id_column.desc() if sort.descending else id_column.asc())


def _after_cursor(record_type: RecordType[Any], sort: SortSpec, cursor: Cursor) -> ColumnElement[bool]:
    id_column = record_type.model.id
    after_id: ColumnElement[bool] = id_column < cursor.id if sort.descending else id_column > cursor.id
    if sort.name == "id":
        return after_id
    column: Any = sort.custom.expression if sort.custom else record_type.column(sort.name)
    if cursor.value is None:
        return and_(column.is_(None), after_id)
    if sort.custom is not None:
        value = sort.custom.to_sql(parse_value(sort.kind, str(cursor.value), parameter="cursor"))
    else:
        value = _storable(
            record_type, sort.name, parse_value(sort.kind, str(cursor.value), parameter="cursor"), parameter="cursor"
        )
    beyond = column < value if sort.descending else column > value
    clause = or_(beyond, and_(column == value, after_id))
    if sort.nullable:
        clause = or_(clause, column.is_(None))
    return clause


def _limit(params: Mapping[str, str]) -> int:
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT if raw_limit in (None, "") else parse_value(Kind.INT, str(raw_limit), parameter="limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.one("limit", f"must be between 1 and {MAX_LIMIT}")
    return int(limit)


# --- the one serializer -----------------------------------------------------------------------


def visible_fields(session: Session | None, actor: Actor, record_type: RecordType[Any]) -> tuple[str, ...]:
    """The stored and computed fields ``actor`` may read, in order (``custom``: the document of
    custom fields, narrowed to what the actor may read when it is serialized). The one place masks
    are applied to reads: the organization's configured matrix (read once per session), else the
    built-in defaults."""
    fields = readable_fields(session, actor, record_type.noun, (*record_type.read_fields, *record_type.computed))
    return (*fields, "custom") if record_type.customizable else fields


def serialize(session: Session | None, actor: Actor, record_type: RecordType[Any], record: Any) -> dict[str, Any]:
    """The record as ``actor`` may see it: masked fields are absent, not null."""
    return serialize_many(session, actor, record_type, [record])[0]


def serialize_many(
    session: Session | None, actor: Actor, record_type: RecordType[Any], records: Sequence[Any]
) -> list[dict[str, Any]]:
    """Records (ORM objects) as ``actor`` may see them."""
    fields = visible_fields(session, actor, record_type)
    stored = [name for name in fields if name not in record_type.computed]
    rows = [{name: getattr(record, name) for name in stored} for record in records]
    computed = [name for name in fields if name in record_type.computed]
    if computed and session is not None and rows:
        statement = select(record_type.model.id, *_selectable(record_type, computed)).where(
            record_type.model.id.in_([row["id"] for row in rows])
        )
        values = {row[0]: row[1:] for row in session.execute(statement)}
        for row in rows:
            for name, value in zip(computed, values.get(row["id"], (None,) * len(computed)), strict=True):
                row[name] = record_type.computed[name].decode(value)
    return _expanded(session, actor, record_type, rows)


def _selectable(
    record_type: RecordType[Any], names: Iterable[str], custom: Mapping[str, CustomListField] | None = None
) -> list[Any]:
    """The table's column, the computed expression or the custom field's value, labelled with its
    name, for each name."""
    table = record_type.model.__table__
    selected: list[Any] = []
    for name in names:
        if name in record_type.computed:
            selected.append(record_type.computed[name].expression().label(name))
        elif custom is not None and name in custom:
            selected.append(custom[name].expression.label(name))
        else:
            selected.append(table.c[name])
    return selected


def masked(session: Session, actor: Actor, noun: str) -> frozenset[str]:
    """Every field of ``noun`` hidden from ``actor``: stored and computed ones, and ``custom.<name>``
    of the custom fields it may not read (for history, audit bodies and formula inputs)."""
    hidden = masked_fields(session, actor, noun)
    record_type = _REGISTRY.get(noun)
    if record_type is None or not record_type.customizable:
        return hidden
    from closeloop.crm import customfields

    return hidden | customfields.hidden_keys(session, actor, noun)


def _custom_list_fields(session: Session, actor: Actor, record_type: RecordType[Any]) -> dict[str, CustomListField]:
    if not record_type.customizable:
        return {}
    from closeloop.crm import customfields

    return customfields.list_fields(session, actor, record_type)


def _decoders(record_type: RecordType[Any], columns: Sequence[str]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """The computed fields among ``columns`` and how to decode each (worked out once per page, not per row)."""
    return tuple((name, record_type.computed[name].decode) for name in columns if name in record_type.computed)


def _decoded_with(
    decoders: tuple[tuple[str, Callable[[Any], Any]], ...], columns: Sequence[str], row: Sequence[Any]
) -> dict[str, Any]:
    data = dict(zip(columns, row, strict=True))
    for name, decode in decoders:
        data[name] = decode(data[name])
    return data


def _expanded(
    session: Session | None, actor: Actor, record_type: RecordType[Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if record_type.customizable and session is not None and rows:
        from closeloop.crm import customfields

        customfields.apply_views(session, actor, record_type.noun, rows)
    if record_type.expand is not None and session is not None and rows:
        expansions = record_type.expand(session, actor, [row["id"] for row in rows])
        for row, expansion in zip(rows, expansions, strict=True):
            row.update(expansion)
    return rows


# --- reads straight into the serialized form --------------------------------------------------
#
# Lists, record pages and exports select only the fields the actor may read and build the
# serialized dicts from the rows, without loading ORM objects: the same masks, a fraction of the
# work. (Writes keep using ORM objects and :func:`serialize`.)


def _read_columns(session: Session, actor: Actor, record_type: RecordType[Any]) -> tuple[str, ...]:
    fields = visible_fields(session, actor, record_type)
    return fields if "id" in fields else ("id", *fields)


@lru_cache(maxsize=1024)
def _by_id_statement(noun: str, columns: tuple[str, ...], scoped: bool, stamped: bool = False) -> Select[Any]:
    record_type = record_type_for(noun)
    model = record_type.model
    selected = _selectable(record_type, columns)
    if stamped:  # the organization's fields stamp rides along (see read_one)
        selected.append(fieldstamp.STAMP_COLUMN)
    return select(*selected).where(
        visibility_template(model, scoped=scoped, access=RowAccess.READ, one_row=True),
        model.__table__.c.id == bindparam("record_id"),
    )


def read_one(session: Session, actor: Actor, record_type: RecordType[Any], record_id: int) -> dict[str, Any]:
    """One record as ``actor`` may see it, or *not found* (a statement built once per shape and reused).

    The columns are the fields the actor may read, so they depend on the organization's field
    configuration, which is kept across requests behind its stamp. When a configuration is kept, the
    record's statement reads the stamp too and the columns are chosen by the kept configuration on
    trust (:func:`fieldstamp.guess`): one statement instead of two. If the stamp has changed, the
    record is read again under the configuration of the new stamp — a mask is never applied late.
    """
    require(actor, f"{record_type.plural}:read")
    model = record_type.model
    organization_id = actor.organization_id
    guessed = fieldstamp.guess(session, organization_id) if organization_id is not None else None
    columns = _read_columns(session, actor, record_type)
    statement = _by_id_statement(record_type.noun, columns, is_scoped(actor, model), guessed is not None)
    parameters = {**scope_parameters(actor, model), "record_id": record_id}
    if guessed is not None:
        parameters[fieldstamp.STAMP_PARAMETER] = organization_id
    names = (*columns, _STAMP) if guessed is not None else columns
    found = _fetch_kept(session, statement, parameters, names, _decoders(record_type, columns))
    record = found[0] if found else None
    if guessed is not None and organization_id is not None:
        if record is None:  # nothing to check the guess against (and no field was read)
            fieldstamp.withdraw(session, organization_id)
        elif not fieldstamp.settle(session, organization_id, guessed, record.pop(_STAMP)):
            return read_one(session, actor, record_type, record_id)  # the session now knows the stamp
    if record is None:
        raise NotFound(record_type.noun, record_id)
    return _expanded(session, actor, record_type, [record])[0]


#: the name the fields stamp goes by among a kept read's columns
_STAMP: str = fieldstamp.STAMP_COLUMN.name


@lru_cache(maxsize=2048)
def _kept_read(
    statement: Select[Any], names: tuple[str, ...], decoders: tuple[tuple[str, Callable[[Any], Any]], ...]
) -> KeptRead:
    return KeptRead(statement, names, dict(decoders))


def _fetch_kept(
    session: Session,
    statement: Select[Any],
    parameters: Mapping[str, Any],
    names: tuple[str, ...],
    decoders: tuple[tuple[str, Callable[[Any], Any]], ...],
) -> list[dict[str, Any]]:
    """The rows of a kept statement (:func:`_by_id_statement`, :func:`_page_statement`) as dicts
    keyed by ``names`` (one per column), the computed fields decoded by ``decoders``: run on the
    driver's cursor by a :class:`~closeloop.db.rawread.KeptRead`, with the values SQLAlchemy's result
    would hold, and without its result and row objects."""
    return _kept_read(statement, names, decoders).dicts(session, parameters)


def _plain_page(
    params: Mapping[str, str], sort: SortSpec, selected: Sequence[str], custom: Mapping[str, CustomListField]
) -> bool:
    """Whether a page's statement is one of :func:`_page_statement`'s: no filter and no search, a
    sort on a column of the record (not a custom field), and a cursor only when sorted by id."""
    if any(name not in RESERVED_PARAMETERS for name in params) or (params.get("q") or "").strip():
        return False
    if sort.custom is not None or any(name in custom for name in selected):
        return False
    return sort.name == "id" or not params.get("cursor")


@lru_cache(maxsize=1024)
def _page_statement(
    noun: str, selected: tuple[str, ...], scoped: bool, stamped: bool, sort: SortSpec, after_id: bool
) -> Select[Any]:
    """A plain page's statement (see :func:`_plain_page`) with bind parameters for the scope
    (:func:`~closeloop.db.scope.scope_parameters`), ``page_limit``, ``page_after_id`` (with
    ``after_id``) and the fields stamp (with ``stamped``): the statement build_query and
    _after_cursor would build, built once per shape so that neither it nor its cache key is built
    again per request."""
    record_type = record_type_for(noun)
    model = record_type.model
    statement = select(*_selectable(record_type, selected)).where(
        visibility_template(model, scoped=scoped, access=RowAccess.READ)
    )
    if after_id:
        id_column = model.id
        statement = statement.where(
            id_column < bindparam("page_after_id") if sort.descending else id_column > bindparam("page_after_id")
        )
    statement = _ordered(record_type, statement, sort).limit(bindparam("page_limit"))
    return statement.add_columns(fieldstamp.STAMP_COLUMN) if stamped else statement


def read_page(
    session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str]
) -> Page[dict[str, Any]]:
    """One page of serialized records, filtered by ``params`` (``field``, ``field__op``, ``q``,
    ``sort``, ``limit``, ``cursor``), with the cursor of the next page when there is one.

    As in :func:`read_one`, a kept field configuration is used on trust and the page's statement
    reads the stamp alongside; the page is read again if the stamp moved. What cannot be checked
    that way — an empty page, or a refusal (a filter on a masked field, an unknown custom field)
    raised before the statement ran — is checked by reading the stamp, as before."""
    organization_id = actor.organization_id
    guessed = fieldstamp.guess(session, organization_id) if organization_id is not None else None
    if guessed is None or organization_id is None:
        return _page_read_plainly(session, actor, record_type, params)
    try:
        page = _read_page(session, actor, record_type, params, guessed=guessed)
    except DomainError:
        fieldstamp.withdraw(session, organization_id)
        if fieldstamp.stamp(session, organization_id) == guessed:
            raise  # the refusal stands under the current configuration
        return _page_read_plainly(session, actor, record_type, params)
    if isinstance(page, Page):
        return page
    # the statement returned no row: no stamp came back with it
    fieldstamp.withdraw(session, organization_id)
    if fieldstamp.stamp(session, organization_id) == guessed:
        return Page(items=[], next_cursor=None)
    return _page_read_plainly(session, actor, record_type, params)


def _page_read_plainly(
    session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str]
) -> Page[dict[str, Any]]:
    page = _read_page(session, actor, record_type, params, guessed=None)
    assert isinstance(page, Page)  # nothing guessed: a page, even an empty one
    return page


class _NoRows:
    """What a page read on trust returns when it read no row (so no stamp to check the trust by)."""


def _read_page(
    session: Session,
    actor: Actor,
    record_type: RecordType[Any],
    params: Mapping[str, str],
    *,
    guessed: str | None,
) -> Page[dict[str, Any]] | _NoRows:
    """:func:`read_page`'s work. With a ``guessed`` stamp, the statement also reads the organization's
    fields stamp, which must match it (else the page is read again, under the current stamp), and an
    empty result is :class:`_NoRows`."""
    columns = _read_columns(session, actor, record_type)
    custom = _custom_list_fields(session, actor, record_type)
    sort = _parse_sort(session, record_type, actor, params.get("sort"), custom)
    sort_name = sort.name
    selected = columns if sort_name in columns else (*columns, sort_name)
    stamped = guessed is not None and actor.organization_id is not None
    parameters: dict[str, Any] = {fieldstamp.STAMP_PARAMETER: actor.organization_id} if stamped else {}
    kept = _plain_page(params, sort, selected, custom)
    if kept:
        # no filter, no search, sorted by a column, paged by id (if at all): a statement built once
        # per shape, as read_one's, with the same checks in the same order as build_query's path
        require(actor, f"{record_type.plural}:read")
        limit = _limit(params)
        cursor = Cursor.decode(params["cursor"], sort=sort.text) if params.get("cursor") else None
        model = record_type.model
        statement = _page_statement(
            record_type.noun, selected, is_scoped(actor, model), stamped, sort, cursor is not None
        )
        parameters.update(scope_parameters(actor, model), page_limit=limit + 1)
        if cursor is not None:
            parameters["page_after_id"] = cursor.id
    else:
        statement, sort = build_query(session, actor, record_type, params, columns=selected, custom=custom)
        limit = _limit(params)
        if params.get("cursor"):
            cursor = Cursor.decode(params["cursor"], sort=sort.text)
            statement = statement.where(_after_cursor(record_type, sort, cursor))
        statement = statement.limit(limit + 1)
        if stamped:
            statement = statement.add_columns(fieldstamp.STAMP_COLUMN)
    decoders = _decoders(record_type, selected)
    rows: list[dict[str, Any]]
    stamp: Any = None
    if kept:
        rows = _fetch_kept(session, statement, parameters, (*selected, _STAMP) if stamped else selected, decoders)
        if stamped and rows:
            stamp = rows[0][_STAMP]
            for row in rows:
                del row[_STAMP]
    else:  # all rows in one fetch: iterating the result would fetch them one call at a time
        fetched: Sequence[Sequence[Any]] = execute_core(session, statement, parameters or None).all()
        if stamped and fetched:
            stamp = fetched[0][-1]
            fetched = [row[:-1] for row in fetched]
        rows = [_decoded_with(decoders, selected, row) for row in fetched]
    if guessed is not None and actor.organization_id is not None:
        if not rows:
            return _NoRows()
        if not fieldstamp.settle(session, actor.organization_id, guessed, stamp):
            return _page_read_plainly(session, actor, record_type, params)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = Cursor(sort.text, audit.json_safe(last[sort.name]), last["id"]).encode()
    if len(selected) > len(columns):
        for row in rows:
            del row[sort_name]
    return Page(items=_expanded(session, actor, record_type, rows), next_cursor=next_cursor)


def read_all(
    session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str], *, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every matching record, serialized, streamed in batches (exports)."""
    columns = _read_columns(session, actor, record_type)
    statement, _ = build_query(session, actor, record_type, params, columns=columns)
    result = session.execute(statement.execution_options(yield_per=batch))
    for partition in result.partitions(batch):
        decoders = _decoders(record_type, columns)
        yield from _expanded(session, actor, record_type, [_decoded_with(decoders, columns, row) for row in partition])


def jsonable(value: Any) -> Any:
    """A value ready for JSON, CSV or a template (money and dates as strings, enums as codes)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
