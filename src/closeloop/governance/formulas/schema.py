"""What a formula can name: an abstract description of a record's fields and related records.

The governance layer knows no CRM model. A caller (``crm/formulas.py``) describes a record type as a
:class:`FormulaSchema`: its fields, each with a type, the SQL column it reads and the ``(noun,
field)`` it stands for (for field masks and lineage), and its relations to lists of related
records, each with the SQL condition that ties a related row to the record and the date field that
``days_ago`` measures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, Date, DateTime, Integer, SmallInteger, String, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from closeloop.db.types import ScaledDecimal, UTCDateTime


class FormulaType(StrEnum):
    """The types a formula's values have. Money and percentages are numbers."""

    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    #: the type of the literal ``NULL`` before its place gives it one (never a formula's result)
    NULL = "null"


#: ``(noun, field)``: the stored field a formula input stands for, as field masks and lineage name it
FieldIdentity = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Field:
    """A field a formula may read.

    ``column`` builds the SQL expression of the stored value (called when a formula is compiled; it
    may refer to other tables, e.g. a correlated subquery). A number is stored as an integer:
    ``scale`` says how many decimal places it was scaled by (2 for money kept in cents).
    """

    name: str
    type: FormulaType
    column: Callable[[], ColumnElement[Any]]
    source: FieldIdentity
    scale: int = 0
    description: str = ""


@dataclass(frozen=True, slots=True)
class Relation:
    """A list of related records (an account's ``orders``), usable in aggregates.

    ``correlate`` builds the WHERE clause that keeps the related rows of the record being computed
    *and only those the caller may see* (the caller's scope door); ``age_field`` names the related
    record's date or date-time field that ``days_ago`` counts from.
    """

    name: str
    schema: FormulaSchema
    correlate: Callable[[], ColumnElement[bool]]
    age_field: str | None = None
    description: str = ""


@dataclass(frozen=True)
class FormulaSchema:
    """The fields and relations of one record type (``noun``) as formulas see them."""

    noun: str
    fields: Mapping[str, Field]
    relations: Mapping[str, Relation] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted([*self.fields, *self.relations])


def _base_type(sql_type: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(sql_type, ScaledDecimal | UTCDateTime):
        return sql_type
    if isinstance(sql_type, TypeDecorator):
        return _base_type(sql_type.impl_instance)
    return sql_type


def field_of_column(
    name: str,
    column: Any,
    *,
    noun: str,
    source_field: str | None = None,
    description: str = "",
) -> Field:
    """A :class:`Field` reading a mapped column (``Order.total``), typed from the column's SQL type.

    Numbers must be stored exactly — integers, or :class:`ScaledDecimal` (money, percentages) —
    because that is what lets a formula give the same answer on SQLite and PostgreSQL.
    """
    sql_type = _base_type(column.type)
    scale = 0
    if isinstance(sql_type, ScaledDecimal):
        kind = FormulaType.NUMBER
        scale = sql_type.scale
    elif isinstance(sql_type, UTCDateTime | DateTime):
        kind = FormulaType.DATETIME
    elif isinstance(sql_type, Date):
        kind = FormulaType.DATE
    elif isinstance(sql_type, Boolean):
        kind = FormulaType.BOOLEAN
    elif isinstance(sql_type, Integer | BigInteger | SmallInteger):
        kind = FormulaType.NUMBER
    elif isinstance(sql_type, String | Text):
        kind = FormulaType.TEXT
    else:
        raise TypeError(f"{noun}.{name}: formulas cannot read a column of type {column.type!r}")
    return Field(
        name=name,
        type=kind,
        column=lambda: column,
        source=(noun, source_field or name),
        scale=scale,
        description=description,
    )
