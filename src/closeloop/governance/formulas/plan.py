"""The checked formula: a typed tree whose every node has one meaning, shared by the SQL compiler and
the reference evaluator (so the two cannot read a formula differently).

Sugar is gone by now: ``x IN (a, b)`` is ``x = a OR x = b``, ``a <> b`` is ``a != b``, a field is a
resolved :class:`~closeloop.governance.formulas.schema.Field`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from closeloop.governance.formulas.schema import Field, FormulaType, Relation


class Aggregate(StrEnum):
    SUM = "SUM"
    COUNT = "COUNT"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"


@dataclass(frozen=True, slots=True)
class Plan:
    type: FormulaType


@dataclass(frozen=True, slots=True)
class Literal(Plan):
    """A constant: ``float``, ``str``, ``bool``, ``date`` or ``None`` (a NULL of ``type``)."""

    value: float | str | bool | date | None


@dataclass(frozen=True, slots=True)
class FieldValue(Plan):
    """A field of the record (or, inside an aggregate's WHERE, of the related record)."""

    field: Field


@dataclass(frozen=True, slots=True)
class DaysAgo(Plan):
    """Inside an aggregate: whole days from the related record's ``age_field`` (its UTC date) to today."""

    relation: Relation
    age: Field


@dataclass(frozen=True, slots=True)
class Arithmetic(Plan):
    op: str  # + - * /
    left: Plan
    right: Plan


@dataclass(frozen=True, slots=True)
class Negative(Plan):
    operand: Plan


@dataclass(frozen=True, slots=True)
class Concat(Plan):
    left: Plan
    right: Plan


@dataclass(frozen=True, slots=True)
class Comparison(Plan):
    op: str  # = != < <= > >=
    left: Plan
    right: Plan
    #: the type both sides have (``text`` compares by code point on both databases)
    operand_type: FormulaType


@dataclass(frozen=True, slots=True)
class Logical(Plan):
    op: str  # AND / OR
    left: Plan
    right: Plan


@dataclass(frozen=True, slots=True)
class Not(Plan):
    operand: Plan


@dataclass(frozen=True, slots=True)
class IsNull(Plan):
    operand: Plan
    negated: bool


@dataclass(frozen=True, slots=True)
class If(Plan):
    condition: Plan
    then: Plan
    otherwise: Plan


@dataclass(frozen=True, slots=True)
class Coalesce(Plan):
    items: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class Round(Plan):
    operand: Plan
    digits: int


@dataclass(frozen=True, slots=True)
class Abs(Plan):
    operand: Plan


@dataclass(frozen=True, slots=True)
class Extreme(Plan):
    """Scalar ``MIN(a, b, …)`` / ``MAX(a, b, …)``: NULLs are skipped, NULL only when all are."""

    op: str  # MIN / MAX
    items: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class DaysBetween(Plan):
    """Whole days from ``start``'s UTC date to ``end``'s (negative when ``end`` is earlier)."""

    start: Plan
    end: Plan


@dataclass(frozen=True, slots=True)
class Today(Plan):
    pass


@dataclass(frozen=True, slots=True)
class DateOf(Plan):
    """The UTC date of a date-time."""

    operand: Plan


@dataclass(frozen=True, slots=True)
class DatePart(Plan):
    part: str  # YEAR / MONTH
    operand: Plan


@dataclass(frozen=True, slots=True)
class Contains(Plan):
    text: Plan
    part: Plan


@dataclass(frozen=True, slots=True)
class AggregateOf(Plan):
    """``SUM(orders.amount WHERE …)``: over the related rows the caller may see; ``field`` is
    ``None`` for ``COUNT(orders)``. SUM of no rows is 0, COUNT 0, AVG/MIN/MAX NULL."""

    function: Aggregate
    relation: Relation
    field: Field | None
    where: Plan | None


def children(plan: Plan) -> tuple[Plan, ...]:
    """The direct sub-plans of ``plan`` (an aggregate's WHERE included)."""
    match plan:
        case Arithmetic(left=left, right=right) | Concat(left=left, right=right):
            return (left, right)
        case Comparison(left=left, right=right) | Logical(left=left, right=right):
            return (left, right)
        case Negative(operand=o) | Not(operand=o) | IsNull(operand=o) | Round(operand=o) | Abs(operand=o):
            return (o,)
        case DateOf(operand=o) | DatePart(operand=o):
            return (o,)
        case If(condition=c, then=t, otherwise=e):
            return (c, t, e)
        case Coalesce(items=items) | Extreme(items=items):
            return items
        case DaysBetween(start=s, end=e):
            return (s, e)
        case Contains(text=t, part=p):
            return (t, p)
        case AggregateOf(where=where):
            return (where,) if where is not None else ()
    return ()
