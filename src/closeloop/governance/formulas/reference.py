"""The reference evaluator: the formula language's meaning, in plain Python, for tests to hold the SQL
to. It walks the checked plan (never ``eval``), one record at a time, with SQL's NULL rules:

- arithmetic, comparisons, ``&``, ROUND, ABS, the date functions and CONTAINS give NULL when a
  value they need is NULL; division by zero gives NULL;
- ``AND``/``OR``/``NOT`` are three-valued (``FALSE AND NULL`` is ``FALSE``, ``TRUE OR NULL`` is ``TRUE``);
- IF takes the ELSE branch when its condition is NULL; WHERE keeps only related rows whose
  condition is TRUE;
- COALESCE gives its first non-NULL value; scalar MIN/MAX skip NULLs;
- aggregates skip NULL values; SUM and COUNT of nothing are 0; AVG, MIN and MAX of nothing are NULL.

Numbers are Python floats computed with the same operations, in the same order, as the SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from closeloop.governance.formulas import plan as p
from closeloop.governance.formulas.schema import Field, FormulaType

T = FormulaType
Row = Mapping[str, Any]
_NO_FRACTION = float(2**52)


def _exact(value: Any) -> Fraction:
    """A stored number exactly (``Decimal('12.34')``, ``7``)."""
    if isinstance(value, Decimal | int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value)
    raise TypeError(f"not a number: {value!r}")


def _number(value: Any) -> float | None:
    """A stored number as the formula sees it: the double nearest its exact value."""
    return None if value is None else float(_exact(value))


def _utc_date(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value


class Evaluator:
    def __init__(self, today: date, related: Mapping[str, Sequence[Row]] | None = None) -> None:
        self.today = today
        self.related = related or {}

    def value(self, plan: p.Plan, row: Row) -> Any:
        method = getattr(self, f"_{type(plan).__name__}")
        return method(plan, row)

    def _Literal(self, plan: p.Literal, row: Row) -> Any:
        return plan.value

    def _FieldValue(self, plan: p.FieldValue, row: Row) -> Any:
        return self.stored(plan.field, row.get(plan.field.name))

    @staticmethod
    def stored(field: Field, value: Any) -> Any:
        if value is None:
            return None
        if field.type is T.NUMBER:
            return _number(value)
        if field.type is T.BOOLEAN:
            return bool(value)
        return value

    def _DaysAgo(self, plan: p.DaysAgo, row: Row) -> Any:
        start = _utc_date(row.get(plan.age.name))
        return None if start is None else float((self.today - start).days)

    def _Today(self, plan: p.Today, row: Row) -> Any:
        return self.today

    def _Arithmetic(self, plan: p.Arithmetic, row: Row) -> Any:
        left, right = self.value(plan.left, row), self.value(plan.right, row)
        if left is None or right is None:
            return None
        if plan.op == "+":
            return left + right
        if plan.op == "-":
            return left - right
        if plan.op == "*":
            return left * right
        return None if right == 0 else left / right

    def _Negative(self, plan: p.Negative, row: Row) -> Any:
        value = self.value(plan.operand, row)
        return None if value is None else -value

    def _Concat(self, plan: p.Concat, row: Row) -> Any:
        left, right = self.value(plan.left, row), self.value(plan.right, row)
        return None if left is None or right is None else left + right

    def _Comparison(self, plan: p.Comparison, row: Row) -> Any:
        left, right = self.value(plan.left, row), self.value(plan.right, row)
        if left is None or right is None:
            return None
        match plan.op:
            case "=":
                return left == right
            case "!=":
                return left != right
            case "<":
                return left < right
            case "<=":
                return left <= right
            case ">":
                return left > right
            case ">=":
                return left >= right
        raise ValueError(plan.op)  # pragma: no cover

    def _Logical(self, plan: p.Logical, row: Row) -> Any:
        left, right = self.value(plan.left, row), self.value(plan.right, row)
        decisive = plan.op == "OR"  # TRUE decides an OR, FALSE an AND
        if left is decisive or right is decisive:
            return decisive
        if left is None or right is None:
            return None
        return not decisive

    def _Not(self, plan: p.Not, row: Row) -> Any:
        value = self.value(plan.operand, row)
        return None if value is None else not value

    def _IsNull(self, plan: p.IsNull, row: Row) -> Any:
        value = self.value(plan.operand, row)
        return (value is not None) if plan.negated else (value is None)

    def _If(self, plan: p.If, row: Row) -> Any:
        if self.value(plan.condition, row) is True:
            return self.value(plan.then, row)
        return self.value(plan.otherwise, row)

    def _Coalesce(self, plan: p.Coalesce, row: Row) -> Any:
        for item in plan.items:
            value = self.value(item, row)
            if value is not None:
                return value
        return None

    def _Round(self, plan: p.Round, row: Row) -> Any:
        x = self.value(plan.operand, row)
        if x is None:
            return None
        factor = float(10 ** abs(plan.digits))
        scaled = abs(x) * factor if plan.digits >= 0 else abs(x) / factor
        if scaled >= _NO_FRACTION:
            return x
        floored = float(math.floor(scaled + 0.5))
        rounded = floored / factor if plan.digits >= 0 else floored * factor
        return -rounded if x < 0 else rounded

    def _Abs(self, plan: p.Abs, row: Row) -> Any:
        value = self.value(plan.operand, row)
        return None if value is None else abs(value)

    def _Extreme(self, plan: p.Extreme, row: Row) -> Any:
        values = [v for v in (self.value(item, row) for item in plan.items) if v is not None]
        if not values:
            return None
        return min(values) if plan.op == "MIN" else max(values)

    def _date(self, plan: p.Plan, row: Row) -> date | None:
        return _utc_date(self.value(plan, row))

    def _DaysBetween(self, plan: p.DaysBetween, row: Row) -> Any:
        start, end = self._date(plan.start, row), self._date(plan.end, row)
        return None if start is None or end is None else float((end - start).days)

    def _DateOf(self, plan: p.DateOf, row: Row) -> Any:
        return self._date(plan.operand, row)

    def _DatePart(self, plan: p.DatePart, row: Row) -> Any:
        value = self._date(plan.operand, row)
        if value is None:
            return None
        return float(value.year if plan.part == "YEAR" else value.month)

    def _Contains(self, plan: p.Contains, row: Row) -> Any:
        text, part = self.value(plan.text, row), self.value(plan.part, row)
        return None if text is None or part is None else part in text

    def _AggregateOf(self, plan: p.AggregateOf, row: Row) -> Any:
        rows = self.related.get(plan.relation.name, ())
        inner = Evaluator(self.today)
        chosen = [r for r in rows if plan.where is None or inner.value(plan.where, r) is True]
        field = plan.field
        if field is None:
            return float(len(chosen))
        values = [r.get(field.name) for r in chosen]
        present = [v for v in values if v is not None]
        if plan.function is p.Aggregate.COUNT:
            return float(len(present))
        if field.type is T.NUMBER:
            exact = [_exact(v) for v in present]
            if plan.function is p.Aggregate.SUM:
                return float(sum(exact, Fraction(0)))
            if not exact:
                return None
            if plan.function is p.Aggregate.AVG:
                return float(sum(exact, Fraction(0)) / len(exact))
            return float(min(exact) if plan.function is p.Aggregate.MIN else max(exact))
        if not present:
            return None
        return min(present) if plan.function is p.Aggregate.MIN else max(present)


def evaluate(plan: p.Plan, row: Row, *, today: date, related: Mapping[str, Sequence[Row]] | None = None) -> Any:
    """The value of ``plan`` for one record: ``row`` maps field names to stored values (Decimal, int,
    str, date, aware datetime, bool or None); ``related`` maps relation names to the related rows
    the caller may see."""
    return Evaluator(today, related).value(plan, row)
