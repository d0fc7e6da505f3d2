"""Custom fields on CRM records (GOV-1): defining them, and the one place their definitions are
applied — validation on write, the read form, list filters and sorting, import and export.

A definition belongs to one record type of one organization. Values live in the record's
``custom`` JSON document under the field's name (stored forms: :mod:`.types`). A definition may
be restricted to some roles (``visible_to``): for everyone else the field is absent from reads,
exports and history, and filtering on it or writing it is refused — the field masks of
:mod:`closeloop.governance.fields`, configured as data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Row,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, FieldProblem, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from closeloop.crm import formulas, records
from closeloop.crm.schemas import Schema
from closeloop.db.functions import json_list_holds, json_scalar
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause, visibility_template, visible
from closeloop.db.session import execute_core
from closeloop.governance import fields, fieldstamp
from closeloop.governance.audit import service as audit
from closeloop.governance.customfields.models import CustomFieldDefinition
from closeloop.governance.customfields.types import (
    CHOICE_PATTERN,
    NAME_PATTERN,
    OPERATORS,
    FieldRule,
    FieldType,
    ValueProblem,
    clean_value,
    labels_of,
    plain,
    read_value,
)
from closeloop.governance.fields import Access, FieldPolicy, policy_of
from closeloop.governance.formulas import Compiled
from closeloop.governance.formulas.errors import FormulaError
from closeloop.governance.formulas.schema import FormulaType
from closeloop.governance.permissions import Role, require
from closeloop.org import service as org_service
from closeloop.org.models import User

PREFIX = "custom."


def customizable_nouns() -> list[str]:
    """Record types that carry custom fields (their model has the ``custom`` document)."""
    return sorted(rt.noun for rt in records.all_record_types() if hasattr(rt.model, "custom"))


@dataclass(frozen=True, slots=True)
class Definition:
    """A live definition, detached from the session (safe to cache and pass around)."""

    id: int
    record_type: str
    name: str
    field_type: FieldType
    label_zh: str
    label_en: str
    help_zh: str | None
    help_en: str | None
    required: bool
    rule: FieldRule
    choices: tuple[dict[str, str], ...]
    link_type: str | None
    default: Any
    visible_to: frozenset[str] | None
    position: int
    version: int
    formula: str | None = None
    #: an expression index serves filters and sorts on the field (:func:`sync_index`)
    indexed: bool = False

    def default_access(self, role: str) -> Access:
        """What ``role`` may do with the field when no mask is configured: ``visible_to`` (everyone
        who reads the record when unset); a formula field is never edited."""
        read = self.visible_to is None or role in self.visible_to
        return Access(read, read and self.field_type is not FieldType.FORMULA)

    def access(self, role: str, matrix: FieldPolicy) -> Access:
        """The configured cell for ``role``, else the default (a formula field is never edited)."""
        found = matrix.access(role, self.record_type, PREFIX + self.name, self.default_access(role))
        return Access(found.read, found.edit and self.field_type is not FieldType.FORMULA)

    def readable_by(self, role: str, matrix: FieldPolicy) -> bool:
        return self.access(role, matrix).read

    def label(self, locale: str) -> str:
        return self.label_en if locale.startswith("en") else self.label_zh

    def body(self) -> dict[str, Any]:
        """The definition as the API shows it."""
        return {
            "id": self.id,
            "record_type": self.record_type,
            "name": self.name,
            "key": PREFIX + self.name,
            "field_type": self.field_type.value,
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "help_zh": self.help_zh,
            "help_en": self.help_en,
            "required": self.required,
            "min_value": plain(self.rule.min_value) if self.rule.min_value is not None else None,
            "max_value": plain(self.rule.max_value) if self.rule.max_value is not None else None,
            "max_length": self.rule.max_length,
            "pattern": self.rule.pattern,
            "choices": list(self.choices) or None,
            "link_type": self.link_type,
            "default": self.default,
            "visible_to": sorted(self.visible_to) if self.visible_to is not None else None,
            "position": self.position,
            "formula": self.formula,
            "indexed": self.indexed,
            "operators": sorted(OPERATORS[self.field_type]),
            "sortable": self.rule.sortable,
            "version": self.version,
        }


def _detached(row: CustomFieldDefinition | Row[Any]) -> Definition:
    """A definition from its ORM object or its stored row (the hot read path selects rows)."""
    field_type = FieldType(row.field_type)
    choices = tuple(row.choices or ())
    return Definition(
        id=row.id,
        record_type=row.record_type,
        name=row.name,
        field_type=field_type,
        label_zh=row.label_zh,
        label_en=row.label_en,
        help_zh=row.help_zh,
        help_en=row.help_en,
        required=row.required,
        rule=FieldRule(
            name=row.name,
            field_type=field_type,
            required=row.required,
            min_value=row.min_value,
            max_value=row.max_value,
            max_length=row.max_length,
            pattern=row.pattern,
            choices=tuple(choice["value"] for choice in choices),
            labels=labels_of(choices),
        ),
        choices=choices,
        link_type=row.link_type,
        default=row.default,
        visible_to=frozenset(row.visible_to) if row.visible_to is not None else None,
        position=row.position,
        version=row.version,
        formula=row.formula,
        indexed=bool(row.indexed),
    )


_CACHE = fieldstamp.session_copy("closeloop.custom_field_definitions")


def forget_definitions(session: Session) -> None:
    """Drop the definitions this session has read (after one was created, changed or retired)."""
    session.info.pop(_CACHE, None)


def definitions(session: Session, organization_id: int, noun: str) -> list[Definition]:
    """The live definitions of one record type, in display order (read once per session; across
    sessions kept behind the organization's stamp, :mod:`closeloop.governance.fieldstamp`)."""
    cache: dict[Any, list[Definition]] = session.info.setdefault(_CACHE, {})
    key = (organization_id, noun)
    if key not in cache:
        # a copy: the kept list is shared by every session of the process
        cache[key] = list(
            fieldstamp.shared(
                session, organization_id, ("definitions", noun), lambda: _load(session, organization_id, noun)
            )
        )
    return cache[key]


#: the live definitions of one record type: one statement, built once (every read of a
#: customizable record runs it, so it is a plain Core SELECT with bound parameters, not an ORM query)
_LIVE_DEFINITIONS = (
    select(*CustomFieldDefinition.__table__.c)
    .where(
        visibility_template(CustomFieldDefinition, scoped=False, access=RowAccess.READ),
        CustomFieldDefinition.record_type == bindparam("noun"),
        CustomFieldDefinition.deleted_at.is_(None),
    )
    .order_by(CustomFieldDefinition.position, CustomFieldDefinition.id)
)


def _load(session: Session, organization_id: int, noun: str) -> list[Definition]:
    rows = execute_core(session, _LIVE_DEFINITIONS, {"scope_organization_id": organization_id, "noun": noun})
    return [_detached(row) for row in rows]


def readable(session: Session, actor: Actor, noun: str) -> list[Definition]:
    """The definitions of ``noun`` that ``actor``'s role may read (the configured field masks, else
    each definition's ``visible_to``)."""
    cache: dict[Any, list[Definition]] = session.info.setdefault(_CACHE, {})
    key = ("readable", actor.organization_id, actor.role, actor.kind, noun)
    if key not in cache:
        matrix = fields.policy_of(session, actor)
        cache[key] = [
            d
            for d in definitions(session, actor.organization_id, noun)
            if d.readable_by(actor.role, matrix) and not _formula_masked(session, actor, noun, d)
        ]
    return cache[key]


def _formula_masked(session: Session, actor: Actor, noun: str, definition: Definition) -> bool:
    """A formula field reading a field ``actor`` may not read (or a kind of record it may not read)
    is masked for it: absent, like any masked field. One that no longer compiles is shown (empty)."""
    if definition.field_type is not FieldType.FORMULA or definition.formula is None:
        return False
    try:
        checked = formulas.check(actor, noun, definition.formula, session)
    except Forbidden:
        return True
    except FormulaError:
        return False
    return formulas.masked_for(actor, checked, session)


def hidden_keys(session: Session, actor: Actor, noun: str) -> frozenset[str]:
    """``custom.<name>`` of each field masked from ``actor`` (for history and audit bodies)."""
    matrix = fields.policy_of(session, actor)
    return frozenset(
        PREFIX + d.name
        for d in definitions(session, actor.organization_id, noun)
        if not d.readable_by(actor.role, matrix)
    )


# --- values on records ----------------------------------------------------------------------------


def view(fields: Iterable[Definition], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``custom`` object of a record as the reader sees it: every readable field, ``null`` when unset."""
    stored = stored or {}
    return {d.name: read_value(d.field_type, stored.get(d.name)) for d in fields}


def apply_views(session: Session, actor: Actor, noun: str, rows: list[dict[str, Any]]) -> None:
    """Replace each row's stored ``custom`` document by what ``actor`` may read of it."""
    if not rows or "custom" not in rows[0]:
        return
    fields = readable(session, actor, noun)
    for row in rows:
        row["custom"] = view(fields, row["custom"])
    for definition in fields:
        if definition.field_type is FieldType.FORMULA:
            _formula_values(session, actor, noun, definition, rows)


def _compiled(session: Session, actor: Actor, noun: str, definition: Definition) -> Compiled | None:
    """The field's formula compiled for ``actor``; ``None`` when the actor may not see one of its
    inputs (the field is masked for them) or the formula no longer compiles."""
    assert definition.formula is not None
    try:
        compiled = formulas.compile_for(actor, noun, definition.formula, session)
    except (FormulaError, Forbidden):
        return None
    return None if formulas.masked_for(actor, compiled, session) else compiled


def compiled_formula(session: Session, actor: Actor, noun: str, definition: Definition) -> Compiled | None:
    """A formula field compiled for ``actor`` (dashboards use it as a measure or a dimension);
    ``None`` when masked for them or no longer compiling."""
    return _compiled(session, actor, noun, definition)


def _formula_values(
    session: Session, actor: Actor, noun: str, definition: Definition, rows: list[dict[str, Any]]
) -> None:
    compiled = _compiled(session, actor, noun, definition)
    if compiled is None:  # masked: the field is absent, as masked fields are
        for row in rows:
            row["custom"].pop(definition.name, None)
        return
    ids = [row["id"] for row in rows]
    try:
        values = dict(formulas.values_of(session, actor, noun, compiled, ids=ids, limit=len(ids)))
    except FormulaError:
        values = {}
    for row in rows:
        row["custom"][definition.name] = values.get(row["id"])


def rule_value(
    session: Session,
    organization_id: int,
    noun: str,
    name: str,
    record: Any,
    *,
    as_of: datetime | None = None,
    rewind: formulas.Rewind | None = None,
    rewindable: frozenset[str] = frozenset(),
) -> Any:
    """What an automation rule's condition on ``<noun>.custom.<name>`` sees: the stored value, or
    for a formula field its value computed in the database for this record. Rules read records
    whole, as the organization (their stored fields too), so the formula is compiled as its system
    actor; one that no longer compiles reads as no value.

    With ``as_of`` (a backtest), ``record`` is the record rebuilt as it was then, and a formula is
    evaluated on it — and on the related rows of that moment, see :func:`formulas.value_as_of` —
    instead of on today's row."""
    definition = next((d for d in definitions(session, organization_id, noun) if d.name == name), None)
    if definition is None or definition.field_type is not FieldType.FORMULA or definition.formula is None:
        return (getattr(record, "custom", None) or {}).get(name)
    cache: dict[Any, Compiled | None] = session.info.setdefault(_RULE_FORMULAS, {})
    key = (organization_id, noun, definition.id, definition.version)
    system = org_service.system_actor(organization_id)
    if key not in cache:
        try:
            cache[key] = formulas.compile_for(system, noun, definition.formula, session)
        except FormulaError:
            cache[key] = None
    compiled = cache[key]
    if compiled is None or getattr(record, "id", None) is None:
        return None
    if as_of is not None:
        try:
            return formulas.value_as_of(
                session, system, noun, compiled, record, as_of, rewind=rewind, rewindable=rewindable
            )
        except (FormulaError, ArithmeticError):
            return None
    try:
        return dict(formulas.values_of(session, system, noun, compiled, ids=[record.id], limit=1)).get(record.id)
    except FormulaError:
        return None


_RULE_FORMULAS = "closeloop.rule_formulas"


def _check_references(session: Session, actor: Actor, definition: Definition, value: int) -> str | None:
    if definition.field_type is FieldType.USER:
        found = session.scalar(
            select(User.id).where(tenant_clause(actor.organization_id, User), User.id == value, User.is_active)
        )
        return None if found is not None else f"no active user {value} in your organization"
    assert definition.link_type is not None
    target = records.record_type_for(definition.link_type)
    found = session.scalar(
        select(target.model.id).where(
            visibility_clause(actor, target.model, access=RowAccess.READ), target.model.id == value
        )
    )
    return None if found is not None else f"no {definition.link_type} {value} that you can see"


def clean(
    session: Session,
    actor: Actor,
    noun: str,
    incoming: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The record's new ``custom`` document, or a 422 naming every field at fault (``custom.<name>``).

    ``current`` is ``None`` for a new record: defaults fill the fields not given and every required
    field must have a value. On a change, only the fields given are checked and changed (``null``
    clears one); values of deleted definitions are kept untouched.
    """
    incoming = dict(incoming or {})
    fields = {d.name: d for d in definitions(session, actor.organization_id, noun)}
    matrix = policy_of(session, actor)
    result = dict(current or {})
    problems: list[FieldProblem] = []
    for name, raw in incoming.items():
        definition = fields.get(name)
        if definition is None:
            known = ", ".join(sorted(fields)) or "none defined"
            problems.append(FieldProblem(PREFIX + name, f"is not a custom field of {noun} (known: {known})", "unknown"))
            continue
        access = definition.access(actor.role, matrix)
        if not access.read or (not access.edit and definition.field_type is not FieldType.FORMULA):
            raise Forbidden(f"Your role ({actor.role}) may not set {noun}.{PREFIX}{name}", field_name=PREFIX + name)
        try:
            value = clean_value(definition.rule, raw)
        except ValueProblem as problem:
            problems.append(FieldProblem(PREFIX + name, problem.message, problem.code))
            continue
        if isinstance(value, int) and definition.field_type in (FieldType.USER, FieldType.RECORD_LINK):
            missing = _check_references(session, actor, definition, value)
            if missing:
                problems.append(FieldProblem(PREFIX + name, missing, "not_found"))
                continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    creating = current is None
    for name, definition in fields.items():
        if creating and name not in incoming and definition.default is not None:
            result[name] = definition.default
        absent = definition.required and (creating or name in incoming) and result.get(name) in (None, [])
        if absent and not any(p.field == PREFIX + name for p in problems):
            problems.append(FieldProblem(PREFIX + name, "is required", "required"))
    if problems:
        raise ValidationFailed(problems)
    return result


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{"custom.<name>": [before, after]}`` for each field whose value changed (audit entries)."""
    flat_before = {PREFIX + k: v for k, v in (before or {}).items()}
    flat_after = {PREFIX + k: v for k, v in after.items()}
    return audit.diff(flat_before, flat_after)


# --- filters and sorting ----------------------------------------------------------------------------

_KINDS = {
    FieldType.TEXT: records.Kind.STR,
    FieldType.CHOICE: records.Kind.STR,
    FieldType.NUMBER: records.Kind.DECIMAL,
    FieldType.MONEY: records.Kind.DECIMAL,
    FieldType.DATE: records.Kind.DATE,
    FieldType.USER: records.Kind.INT,
    FieldType.RECORD_LINK: records.Kind.INT,
    FieldType.BOOLEAN: records.Kind.BOOL,
    FieldType.MULTI_CHOICE: records.Kind.STR,
}


#: the SQL type each stored scalar is read as; a multi-choice list and a formula have none
_CASTS = {
    FieldType.TEXT: "VARCHAR",
    FieldType.CHOICE: "VARCHAR",
    FieldType.DATE: "VARCHAR",
    FieldType.NUMBER: "FLOAT",
    FieldType.MONEY: "FLOAT",
    FieldType.USER: "INTEGER",
    FieldType.RECORD_LINK: "INTEGER",
    FieldType.BOOLEAN: "BOOLEAN",
}


def expression(model: Any, definition: Definition) -> ColumnElement[Any]:
    """The stored value of a custom field as a typed SQL expression (same results on both
    databases). Filters, sorts and the field's expression index (:func:`sync_index`) all use this
    one expression, key spelled out, so the database's planner matches the index."""
    if definition.field_type is FieldType.MULTI_CHOICE:
        return model.custom[definition.name].as_json()  # type: ignore[no-any-return]
    return json_scalar(model.custom, definition.name, _CASTS[definition.field_type])


def list_field(model: Any, definition: Definition) -> records.CustomListField:
    """How lists filter and sort on one custom field."""
    return records.CustomListField(
        key=PREFIX + definition.name,
        kind=_KINDS[definition.field_type],
        operators=OPERATORS[definition.field_type],
        expression=expression(model, definition),
        choices=definition.rule.choices or None,
        sortable=definition.rule.sortable,
        is_list=definition.field_type is FieldType.MULTI_CHOICE,
        json_key=definition.name,
        document=model.custom,
        to_sql=_to_sql(definition.field_type),
    )


def _to_sql(kind: FieldType) -> Any:
    if kind is FieldType.DATE:
        return lambda value: value.isoformat()
    if kind in (FieldType.NUMBER, FieldType.MONEY):
        return lambda value: float(value)
    return lambda value: value


_FORMULA_KINDS = {
    FormulaType.NUMBER: (records.Kind.DECIMAL, OPERATORS[FieldType.NUMBER]),
    FormulaType.TEXT: (records.Kind.STR, OPERATORS[FieldType.TEXT]),
    FormulaType.DATE: (records.Kind.DATE, OPERATORS[FieldType.DATE]),
    FormulaType.DATETIME: (records.Kind.DATETIME, frozenset({"gt", "gte", "lt", "lte", "isnull"})),
    FormulaType.BOOLEAN: (records.Kind.BOOL, OPERATORS[FieldType.BOOLEAN]),
}


def _formula_list_field(model: Any, definition: Definition, compiled: Compiled) -> records.CustomListField:
    kind, operators = _FORMULA_KINDS[compiled.type]
    return records.CustomListField(
        key=PREFIX + definition.name,
        kind=kind,
        operators=operators,
        expression=compiled.expression,
        choices=None,
        sortable=True,
        is_list=False,
        json_key=definition.name,
        document=model.custom,
        to_sql=(lambda value: float(value)) if compiled.type is FormulaType.NUMBER else (lambda value: value),
    )


def list_fields(
    session: Session, actor: Actor, record_type: records.RecordType[Any]
) -> dict[str, records.CustomListField]:
    """``custom.<name>`` → how to filter and sort on it, for every custom field ``actor`` may read
    (a formula field: its expression compiled for the actor, unless one of its inputs is masked)."""
    if not hasattr(record_type.model, "custom"):
        return {}
    fields: dict[str, records.CustomListField] = {}
    for definition in readable(session, actor, record_type.noun):
        if definition.field_type is FieldType.FORMULA:
            compiled = _compiled(session, actor, record_type.noun, definition)
            if compiled is not None:
                fields[PREFIX + definition.name] = _formula_list_field(record_type.model, definition, compiled)
        else:
            fields[PREFIX + definition.name] = list_field(record_type.model, definition)
    return fields


# --- managing definitions -----------------------------------------------------------------------------


class Choice(Schema):
    value: Annotated[str, Field(min_length=1, max_length=60)]
    label_zh: Annotated[str, Field(min_length=1, max_length=100)]
    label_en: Annotated[str, Field(min_length=1, max_length=100)]


Label = Annotated[str, Field(min_length=1, max_length=100)]
Help = Annotated[str, Field(max_length=1000)]


class DefinitionCreate(Schema):
    record_type: Annotated[str, Field(description="The noun of the record type: account, contact, lead …")]
    name: Annotated[str, Field(description="Key in the record's `custom` object: lowercase letters, digits, _")]
    field_type: FieldType
    label_zh: Label
    label_en: Label
    help_zh: Help | None = None
    help_en: Help | None = None
    required: bool = False
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    max_length: Annotated[int, Field(ge=1, le=2000)] | None = None
    pattern: Annotated[str, Field(max_length=200)] | None = None
    choices: list[Choice] | None = None
    link_type: str | None = None
    default: Any = None
    visible_to: list[Role] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    formula: Annotated[str, Field(max_length=4000, description="For a formula field: its expression")] | None = None
    indexed: Annotated[bool, Field(description="Keep an index on the field's value (for fields filtered often)")] = (
        False
    )


class DefinitionUpdate(Schema):
    """What may change on a live definition (not its record type, name or type: those are a new field)."""

    label_zh: Label | None = None
    label_en: Label | None = None
    help_zh: Help | None = None
    help_en: Help | None = None
    required: bool | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    max_length: Annotated[int, Field(ge=1, le=2000)] | None = None
    pattern: Annotated[str, Field(max_length=200)] | None = None
    choices: list[Choice] | None = None
    default: Any = None
    visible_to: list[Role] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    formula: Annotated[str, Field(max_length=4000)] | None = None
    indexed: bool | None = None


_STORED_FIELDS = (
    "label_zh",
    "label_en",
    "help_zh",
    "help_en",
    "required",
    "min_value",
    "max_value",
    "max_length",
    "pattern",
    "choices",
    "link_type",
    "default",
    "visible_to",
    "position",
    "formula",
    "indexed",
)


def _check_formula(session: Session, actor: Actor, noun: str, values: dict[str, Any], field_type: FieldType) -> None:
    """A formula field's expression must compile on its record type (422 naming ``formula`` with
    the position); other fields have none."""
    text = values.get("formula")
    if field_type is not FieldType.FORMULA:
        if text is not None:
            raise ValidationFailed.one("formula", f"only formula fields have a formula, not {field_type.value}")
        return
    if noun not in formulas.record_types():
        raise ValidationFailed.one(
            "record_type", f"formula fields exist on: {', '.join(formulas.record_types())}", "unknown"
        )
    if not text or not str(text).strip():
        raise ValidationFailed.one("formula", "a formula field needs its formula", "required")
    for name in ("required", "default"):
        if values.get(name):
            raise ValidationFailed.one(name, "a formula field is computed: it is neither required nor defaulted")
    system = org_service.system_actor(actor.organization_id)
    try:
        formulas.check(system, noun, str(text), session)
    except FormulaError as error:
        raise error.for_field("formula") from None


def _check_definition(values: dict[str, Any], field_type: FieldType) -> None:
    """The definition's own consistency; 422 naming the first field at fault."""
    if values.get("indexed") and field_type not in _CASTS:
        raise ValidationFailed.one(
            "indexed", f"{field_type.value} fields cannot be indexed (their value is not one scalar)"
        )
    choices = values.get("choices")
    if field_type in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        if not choices:
            raise ValidationFailed.one("choices", "a choice field needs at least one choice", "required")
        seen: set[str] = set()
        for index, choice in enumerate(choices):
            if not CHOICE_PATTERN.match(choice["value"]):
                raise ValidationFailed.one(
                    f"choices.{index}.value", "must not hold quotes, backslashes or control characters"
                )
            if choice["value"] in seen:
                raise ValidationFailed.one(
                    f"choices.{index}.value", f"'{choice['value']}' is listed twice", "duplicate"
                )
            seen.add(choice["value"])
    elif choices:
        raise ValidationFailed.one("choices", f"only choice fields have choices, not {field_type.value}")
    numeric = field_type in (FieldType.NUMBER, FieldType.MONEY)
    for name in ("min_value", "max_value"):
        if values.get(name) is not None and not numeric:
            raise ValidationFailed.one(name, f"only number and money fields have a range, not {field_type.value}")
    if (
        values.get("min_value") is not None
        and values.get("max_value") is not None
        and values["min_value"] > values["max_value"]
    ):
        raise ValidationFailed.one("max_value", "must not be below min_value")
    for name in ("max_length", "pattern"):
        if values.get(name) is not None and field_type is not FieldType.TEXT:
            raise ValidationFailed.one(name, f"only text fields have a {name.replace('_', ' ')}")
    if values.get("pattern"):
        try:
            re.compile(values["pattern"])
        except re.error as error:
            raise ValidationFailed.one("pattern", f"is not a regular expression ({error})") from None
    if field_type is FieldType.RECORD_LINK:
        nouns = sorted(rt.noun for rt in records.all_record_types())
        if values.get("link_type") not in nouns:
            raise ValidationFailed.one(
                "link_type", f"a record link names its record type (one of: {', '.join(nouns)})", "required"
            )
    elif values.get("link_type") is not None:
        raise ValidationFailed.one("link_type", "only record-link fields link to a record type")
    if values.get("default") is not None:
        if field_type in (FieldType.USER, FieldType.RECORD_LINK):
            raise ValidationFailed.one("default", "user and record-link fields have no default")
        rule = FieldRule(
            name="default",
            field_type=field_type,
            min_value=values.get("min_value"),
            max_value=values.get("max_value"),
            max_length=values.get("max_length"),
            pattern=values.get("pattern"),
            choices=tuple(c["value"] for c in choices or ()),
            labels=labels_of(choices or ()),
        )
        try:
            values["default"] = clean_value(rule, values["default"])
        except ValueProblem as problem:
            raise ValidationFailed.one("default", problem.message, problem.code) from None


def _get(session: Session, actor: Actor, definition_id: int, *, access: RowAccess) -> CustomFieldDefinition:
    row = session.scalar(
        visible(actor, CustomFieldDefinition, access=access).where(
            CustomFieldDefinition.id == definition_id, CustomFieldDefinition.deleted_at.is_(None)
        )
    )
    if row is None or row.record_type not in customizable_nouns():
        raise NotFound("custom_field", definition_id)
    require(actor, f"{records.record_type_for(row.record_type).plural}:read")
    return row


def get_definition(session: Session, actor: Actor, definition_id: int) -> Definition:
    definition = _detached(_get(session, actor, definition_id, access=RowAccess.READ))
    if not definition.readable_by(actor.role, policy_of(session, actor)):
        raise NotFound("custom_field", definition_id)
    return definition


def _snapshot(row: CustomFieldDefinition) -> dict[str, Any]:
    return {"record_type": row.record_type, "name": row.name, "field_type": row.field_type} | {
        name: getattr(row, name) for name in _STORED_FIELDS
    }


def check_create(session: Session, actor: Actor, data: DefinitionCreate) -> dict[str, Any]:
    """The stored columns of a new definition, or the 422/409 that creating it would answer."""
    require(actor, "schema:manage")
    nouns = customizable_nouns()
    if data.record_type not in nouns:
        raise ValidationFailed.one("record_type", f"must be one of: {', '.join(nouns)}", "unknown")
    if not NAME_PATTERN.match(data.name):
        raise ValidationFailed.one("name", "use 1-40 lowercase letters, digits or _, starting with a letter")
    values = data.model_dump(exclude={"record_type", "name", "field_type"})
    values["choices"] = [c.model_dump() for c in data.choices] if data.choices else None
    values["visible_to"] = sorted(role.value for role in data.visible_to) if data.visible_to is not None else None
    _check_definition(values, data.field_type)
    _check_formula(session, actor, data.record_type, values, data.field_type)
    taken = session.scalar(
        select(CustomFieldDefinition)
        .where(
            tenant_clause(actor.organization_id, CustomFieldDefinition, include_deleted=True),
            CustomFieldDefinition.record_type == data.record_type,
            CustomFieldDefinition.name == data.name,
        )
        .order_by(CustomFieldDefinition.id.desc())
    )
    if taken is not None and taken.deleted_at is None:
        raise Conflict(
            f"{data.record_type} already has a custom field '{data.name}'", code="duplicate", field_name="name"
        )
    if taken is not None and taken.field_type != data.field_type.value:
        raise Conflict(
            f"'{data.name}' was a {taken.field_type} field whose values are still stored; choose another name",
            code="duplicate",
            field_name="name",
        )
    return {"record_type": data.record_type, "name": data.name, "field_type": data.field_type.value, **values}


def create_definition(session: Session, actor: Actor, data: DefinitionCreate) -> Definition:
    """Add a custom field to a record type at once. Needs ``schema:manage``; people go through a
    change request (:mod:`closeloop.crm.changerequests`), which calls this when it is signed off."""
    row = CustomFieldDefinition(organization_id=actor.organization_id, **check_create(session, actor, data))
    session.add(row)
    session.flush()
    forget_definitions(session)
    if row.indexed:
        sync_index(session, _detached(row), wanted=True)
    audit.record(
        session,
        actor,
        "custom_field.created",
        subject_type="custom_field",
        subject_id=row.id,
        changes=audit.diff({}, {k: v for k, v in _snapshot(row).items() if v is not None}),
    )
    return _detached(row)


def check_update(
    session: Session, actor: Actor, definition_id: int, data: DefinitionUpdate, *, expected_version: int | None = None
) -> tuple[CustomFieldDefinition, dict[str, Any]]:
    """The definition and its new values, or the 4xx that changing it would answer."""
    require(actor, "schema:manage")
    row = _get(session, actor, definition_id, access=RowAccess.WRITE)
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed()
    given = data.model_dump(exclude_unset=True)
    if "choices" in given:
        given["choices"] = [c.model_dump() for c in data.choices] if data.choices else None
    if "visible_to" in given:
        given["visible_to"] = sorted(r.value for r in data.visible_to) if data.visible_to is not None else None
    for name in ("label_zh", "label_en", "required", "position", "indexed"):
        if name in given and given[name] is None:
            raise ValidationFailed.one(name, "may not be empty", "required")
    merged = {name: getattr(row, name) for name in _STORED_FIELDS} | given
    _check_definition(merged, FieldType(row.field_type))
    _check_formula(session, actor, row.record_type, merged, FieldType(row.field_type))
    return row, {name: merged[name] for name in given}


def update_definition(
    session: Session, actor: Actor, definition_id: int, data: DefinitionUpdate, *, expected_version: int | None = None
) -> Definition:
    row, new_values = check_update(session, actor, definition_id, data, expected_version=expected_version)
    before = _snapshot(row)
    for name, value in new_values.items():
        setattr(row, name, value)
    difference = audit.diff(before, _snapshot(row))
    forget_definitions(session)
    if "indexed" in difference:
        records.flush(session)
        sync_index(session, _detached(row), wanted=bool(row.indexed))
    if difference:
        records.flush(session)
        audit.record(
            session, actor, "custom_field.updated", subject_type="custom_field", subject_id=row.id, changes=difference
        )
    return _detached(row)


def check_delete(
    session: Session, actor: Actor, definition_id: int, *, expected_version: int | None = None
) -> CustomFieldDefinition:
    require(actor, "schema:manage")
    row = _get(session, actor, definition_id, access=RowAccess.WRITE)
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed()
    return row


def records_with_value(session: Session, organization_id: int, definition: Definition) -> int:
    """How many live records of the organization hold a value for the field (a change's impact);
    a formula field stores none."""
    if definition.field_type is FieldType.FORMULA:
        return 0
    record_type = records.record_type_for(definition.record_type)
    model = record_type.model
    statement = (
        select(func.count())
        .select_from(model)
        .where(tenant_clause(organization_id, model), expression(model, definition).is_not(None))
    )
    return int(session.scalar(statement) or 0)


def records_holding(session: Session, organization_id: int, definition: Definition, values: Iterable[str]) -> int:
    """How many live records hold one of ``values`` in a choice or multi-choice field."""
    record_type = records.record_type_for(definition.record_type)
    model = record_type.model
    wanted = list(values)
    if not wanted:
        return 0
    if definition.field_type is FieldType.MULTI_CHOICE:
        condition = or_(*(json_list_holds(model.custom, literal(definition.name), literal(v)) for v in wanted))
    else:
        condition = expression(model, definition).in_(wanted)
    statement = select(func.count()).select_from(model).where(tenant_clause(organization_id, model), condition)
    return int(session.scalar(statement) or 0)


def detached(row: CustomFieldDefinition) -> Definition:
    return _detached(row)


def delete_definition(
    session: Session, actor: Actor, definition_id: int, *, expected_version: int | None = None
) -> None:
    """Retire a field: it disappears from records, lists and imports; stored values stay (a new
    definition with the same name and type brings them back)."""
    row = check_delete(session, actor, definition_id, expected_version=expected_version)
    row.deleted_at = utcnow()
    records.flush(session)
    forget_definitions(session)
    if row.indexed:
        sync_index(session, _detached(row), wanted=False)
    audit.record(
        session,
        actor,
        "custom_field.deleted",
        subject_type="custom_field",
        subject_id=row.id,
        changes={"deleted_at": [None, audit.json_safe(row.deleted_at)]},
    )


# --- expression indexes ---------------------------------------------------------------------------

#: every index this module makes starts so (Alembic's ``include_object`` leaves them alone)
INDEX_PREFIX = "cfx_"


def index_name(table: str, definition_id: int) -> str:
    """One index per indexed definition: the organization's own, dropped with the definition."""
    return f"{INDEX_PREFIX}{table}_{definition_id}"


def index_ddl(dialect: Dialect, table: str, definition_id: int, key: str, cast: str) -> str:
    """SQLite's ``CREATE INDEX`` for a field: the organization, then the very expression that
    :func:`expression` puts in filters and sorts (compiled by the same construct)."""
    value = json_scalar(literal_column("custom"), key, cast).compile(dialect=dialect)
    return f"CREATE INDEX IF NOT EXISTS {index_name(table, definition_id)} ON {table} (organization_id, {value})"


def apply_index(connection: Connection, table: str, definition_id: int, key: str, cast: str, *, wanted: bool) -> None:
    """Create or drop one field's index. On PostgreSQL the application role does not own the
    tables: the migration's ``closeloop_custom_field_index`` (security definer) checks the parts
    and runs the DDL; it builds the same expression, ``CAST((custom ->> 'key') AS type)``."""
    if not re.fullmatch(r"[a-z_]{1,40}", table):  # pragma: no cover - table names come from the models
        raise ValueError(table)
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT closeloop_custom_field_index(:table, :definition, :key, :cast, :wanted)"),
            {"table": table, "definition": definition_id, "key": key, "cast": cast, "wanted": wanted},
        )
        return
    if wanted:
        connection.execute(text(index_ddl(connection.dialect, table, definition_id, key, cast)))
    else:
        connection.execute(text(f"DROP INDEX IF EXISTS {index_name(table, definition_id)}"))


def sync_index(session: Session, definition: Definition, *, wanted: bool) -> None:
    """Build (``wanted``) or drop the expression index of an indexed field, in the change's
    transaction: a change request that fails leaves no index behind. Building one on a table
    that holds a value it cannot read as the field's type is a 409 naming ``indexed``."""
    cast = _CASTS.get(definition.field_type)
    if cast is None:
        return
    table = records.record_type_for(definition.record_type).model.__tablename__
    savepoint = session.begin_nested()
    try:
        apply_index(session.connection(), table, definition.id, definition.name, cast, wanted=wanted)
    except DBAPIError as error:
        savepoint.rollback()
        raise Conflict(
            f"the index of {definition.record_type}.{definition.name} could not be built: {error.orig}",
            code="index_failed",
            field_name="indexed",
        ) from None
    savepoint.commit()


def index_names(connection: Connection) -> set[str]:
    """The custom-field indexes that exist (tests, the operator's view)."""
    if connection.dialect.name == "postgresql":
        statement = text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'cfx\\_%'"
        )
    else:
        statement = text("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'cfx\\_%' ESCAPE '\\'")
    return set(connection.execute(statement).scalars())
