"""Compiling a checked formula to one SQLAlchemy expression that gives the same values on SQLite and
PostgreSQL.

How sameness is kept:

- **Numbers are IEEE doubles** on both engines (``REAL`` / ``DOUBLE PRECISION``) and in Python.
  Stored numbers are exact integers (money in cents), cast to double and divided by their scale once,
  so each reads as the double nearest its decimal value. ``+ - * /`` are correctly rounded
  everywhere; integer division never happens. Division by zero is NULL (``NULLIF``).
- **Aggregates add the stored integers** (exact on both) and convert once; AVG is
  ``SUM / (COUNT · scale)`` in one division — never the engines' own AVG, whose precision differs.
- **ROUND** is spelled out (half away from zero: ``sign(x) · floor(|x|·10ⁿ + 0.5) / 10ⁿ``), since
  SQLite's round() and PostgreSQL's disagree.
- **Texts compare by code point**: PostgreSQL compares under ``COLLATE "C"``, as SQLite's BINARY does.
- **Dates**: a date-time's date is its UTC date; day differences are whole days (``julianday``
  differences of dates on SQLite, date subtraction on PostgreSQL).
- Every literal and NULL is cast to its type, so PostgreSQL never has to guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    Integer,
    String,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from closeloop.core.clock import utcnow
from closeloop.db.types import UTCDateTime
from closeloop.governance.formulas import plan as p
from closeloop.governance.formulas.schema import FormulaType

T = FormulaType
#: 2⁵²: from here on a double has no fraction left to round
_NO_FRACTION = float(2**52)
#: ``days_ago`` bounds (in days) turned into date bounds; beyond them the comparison is kept as is
_AGE_LIMIT = 36_500
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}

# --- portable SQL pieces --------------------------------------------------------------------------


class _Portable(FunctionElement[Any]):
    """A function with one spelling per dialect (registered below)."""

    inherit_cache = True


def _register(
    element: type[_Portable], *, sqlite: Callable[[list[str]], str], postgresql: Callable[[list[str]], str]
) -> None:
    def render(spell: Callable[[list[str]], str]) -> Callable[..., str]:
        def compile_element(element: _Portable, compiler: Any, **kw: Any) -> str:
            return spell([compiler.process(clause, **kw) for clause in element.clauses])

        return compile_element

    compiles(element, "sqlite")(render(sqlite))
    compiles(element, "postgresql")(render(postgresql))

    @compiles(element)
    def _other(element: _Portable, compiler: Any, **kw: Any) -> str:
        raise CompileError(f"formulas run on SQLite and PostgreSQL, not {compiler.dialect.name}")


class AsNumber(_Portable):
    inherit_cache = True
    type = Float()
    name = "formula_number"


class AsText(_Portable):
    inherit_cache = True
    type = String()
    name = "formula_text"


class AsDate(_Portable):
    inherit_cache = True
    type = Date()
    name = "formula_date"


class AsDateTime(_Portable):
    inherit_cache = True
    type = UTCDateTime()
    name = "formula_datetime"


class AsBoolean(_Portable):
    inherit_cache = True
    type = Boolean()
    name = "formula_boolean"


class Negated(_Portable):
    inherit_cache = True
    type = Float()
    name = "formula_negated"


class OrderingKey(_Portable):
    """A text as it sorts: by code point."""

    inherit_cache = True
    type = String()
    name = "formula_ordering_key"


class UtcDate(_Portable):
    """The UTC date of a date-time."""

    inherit_cache = True
    type = Date()
    name = "formula_utc_date"


class DateValue(_Portable):
    """A date, as date arithmetic needs it."""

    inherit_cache = True
    type = Date()
    name = "formula_date_value"


class WholeDays(_Portable):
    """``end - start`` in days, for two dates."""

    inherit_cache = True
    type = Float()
    name = "formula_whole_days"


class FloorOfNonNegative(_Portable):
    """``floor(x)`` for ``0 <= x < 2⁶³`` (SQLite's floor() is optional; a cast truncates)."""

    inherit_cache = True
    type = Float()
    name = "formula_floor"


class YearOf(_Portable):
    inherit_cache = True
    type = Float()
    name = "formula_year"


class MonthOf(_Portable):
    inherit_cache = True
    type = Float()
    name = "formula_month"


class ContainsText(_Portable):
    inherit_cache = True
    type = Boolean()
    name = "formula_contains"


class Least(_Portable):
    inherit_cache = True
    name = "formula_least"


class Greatest(_Portable):
    inherit_cache = True
    name = "formula_greatest"


def _rotations(args: list[str]) -> list[str]:
    """``coalesce(a, b, c), coalesce(b, c, a), …``: each is NULL only when all are."""
    return [f"coalesce({', '.join(args[i:] + args[:i])})" for i in range(len(args))]


_register(AsNumber, sqlite=lambda a: f"CAST({a[0]} AS REAL)", postgresql=lambda a: f"CAST({a[0]} AS DOUBLE PRECISION)")
_register(AsText, sqlite=lambda a: f"CAST({a[0]} AS TEXT)", postgresql=lambda a: f"CAST({a[0]} AS TEXT)")
# SQLite keeps dates and date-times as ISO text; CAST(… AS DATE) there would make a number of it.
# A spelling that passes its operand through still parenthesizes it: SQLAlchemy sees a function
# call and adds no parentheses of its own.
_register(AsDate, sqlite=lambda a: f"({a[0]})", postgresql=lambda a: f"CAST({a[0]} AS DATE)")
_register(AsDateTime, sqlite=lambda a: f"({a[0]})", postgresql=lambda a: f"CAST({a[0]} AS TIMESTAMP WITH TIME ZONE)")
_register(AsBoolean, sqlite=lambda a: f"({a[0]})", postgresql=lambda a: f"CAST({a[0]} AS BOOLEAN)")
_register(Negated, sqlite=lambda a: f"(-({a[0]}))", postgresql=lambda a: f"(-({a[0]}))")
_register(OrderingKey, sqlite=lambda a: f"({a[0]})", postgresql=lambda a: f'({a[0]} COLLATE "C")')
_register(UtcDate, sqlite=lambda a: f"date({a[0]})", postgresql=lambda a: f"CAST(({a[0]} AT TIME ZONE 'UTC') AS DATE)")
_register(DateValue, sqlite=lambda a: f"date({a[0]})", postgresql=lambda a: f"({a[0]})")
_register(
    WholeDays,
    sqlite=lambda a: f"(julianday({a[1]}) - julianday({a[0]}))",
    postgresql=lambda a: f"CAST(({a[1]} - {a[0]}) AS DOUBLE PRECISION)",
)
_register(
    FloorOfNonNegative,
    sqlite=lambda a: f"CAST(CAST({a[0]} AS INTEGER) AS REAL)",
    postgresql=lambda a: f"floor({a[0]})",
)
_register(
    YearOf,
    sqlite=lambda a: f"CAST(strftime('%Y', {a[0]}) AS REAL)",
    postgresql=lambda a: f"CAST(EXTRACT(YEAR FROM {a[0]}) AS DOUBLE PRECISION)",
)
_register(
    MonthOf,
    sqlite=lambda a: f"CAST(strftime('%m', {a[0]}) AS REAL)",
    postgresql=lambda a: f"CAST(EXTRACT(MONTH FROM {a[0]}) AS DOUBLE PRECISION)",
)
_register(
    ContainsText, sqlite=lambda a: f"(instr({a[0]}, {a[1]}) > 0)", postgresql=lambda a: f"(strpos({a[0]}, {a[1]}) > 0)"
)
_register(Least, sqlite=lambda a: f"min({', '.join(_rotations(a))})", postgresql=lambda a: f"LEAST({', '.join(a)})")
_register(
    Greatest, sqlite=lambda a: f"max({', '.join(_rotations(a))})", postgresql=lambda a: f"GREATEST({', '.join(a)})"
)


def result_type(kind: FormulaType) -> TypeEngine[Any]:
    """The SQLAlchemy type that reads a formula's value back into Python."""
    types: dict[FormulaType, TypeEngine[Any]] = {
        T.NUMBER: Float(),
        T.TEXT: String(),
        T.DATE: Date(),
        T.DATETIME: UTCDateTime(),
        T.BOOLEAN: Boolean(),
    }
    return types[kind]


def today() -> date:
    """Today's date in UTC, from the product's clock (tests freeze it)."""
    return utcnow().date()


# --- the compiler ---------------------------------------------------------------------------------


def _number(value: float) -> ColumnElement[Any]:
    return AsNumber(literal(value, Float()))


def _typed_null(kind: FormulaType) -> ColumnElement[Any]:
    cast = {
        T.NUMBER: AsNumber,
        T.TEXT: AsText,
        T.DATE: AsDate,
        T.DATETIME: AsDateTime,
        T.BOOLEAN: AsBoolean,
        T.NULL: AsText,
    }[kind]
    return cast(null())


#: above every built-in operator, so SQLAlchemy puts parentheses around any operand that is itself
#: an operation: the SQL then says exactly what the plan says, whatever each engine's precedences
_TIGHT = 100


def _operation(
    left: ColumnElement[Any], op: str, right: ColumnElement[Any], *, returns: TypeEngine[Any]
) -> ColumnElement[Any]:
    return left.op(op, precedence=_TIGHT, return_type=returns)(right)


def _compare(left: ColumnElement[Any], op: str, right: ColumnElement[Any]) -> ColumnElement[Any]:
    return left.op(op, precedence=_TIGHT, is_comparison=True)(right)


def _arith(op: str, left: ColumnElement[Any], right: ColumnElement[Any]) -> ColumnElement[Any]:
    return _operation(left, op, right, returns=Float())


class SqlCompiler:
    """Turns a :mod:`plan` into SQL. Aggregates become correlated scalar subqueries."""

    def __init__(self, clock: Callable[[], date] = today) -> None:
        self.clock = clock

    def compile(self, plan: p.Plan) -> ColumnElement[Any]:
        """The formula's value, typed so that the driver's value reads back as Python's."""
        return type_coerce(self.sql(plan), result_type(plan.type))

    def sql(self, plan: p.Plan) -> ColumnElement[Any]:
        method: Callable[[Any], ColumnElement[Any]] = getattr(self, f"_{type(plan).__name__}")
        return method(plan)

    # values

    def _Literal(self, plan: p.Literal) -> ColumnElement[Any]:
        value = plan.value
        if value is None:
            return _typed_null(plan.type)
        if plan.type is T.BOOLEAN:
            return true() if value else false()
        if plan.type is T.NUMBER:
            assert isinstance(value, float)
            return _number(value)
        if plan.type is T.TEXT:
            return AsText(literal(value, String()))
        if plan.type is T.DATE:
            return AsDate(literal(value, Date()))
        raise TypeError(f"no literal of type {plan.type}")  # pragma: no cover - the checker makes none

    def _FieldValue(self, plan: p.FieldValue) -> ColumnElement[Any]:
        column = plan.field.column()
        if plan.type is T.NUMBER:
            value = AsNumber(column)
            return _arith("/", value, _number(float(10**plan.field.scale))) if plan.field.scale else value
        return column

    def _DaysAgo(self, plan: p.DaysAgo) -> ColumnElement[Any]:
        return WholeDays(self.date_of(plan.age.type, plan.age.column()), self._Today(p.Today(T.DATE)))

    def _Today(self, plan: p.Today) -> ColumnElement[Any]:
        # the clock is read now, not when the statement runs: SQLAlchemy's statement cache would
        # otherwise reuse another statement's value for a parameter computed at execution
        return AsDate(literal(self.clock(), Date()))

    # operators

    def _Arithmetic(self, plan: p.Arithmetic) -> ColumnElement[Any]:
        left, right = self.sql(plan.left), self.sql(plan.right)
        if plan.op == "/":
            right = func.nullif(right, _number(0.0), type_=Float())
        return _arith(plan.op, left, right)

    def _Negative(self, plan: p.Negative) -> ColumnElement[Any]:
        return Negated(self.sql(plan.operand))

    def _Concat(self, plan: p.Concat) -> ColumnElement[Any]:
        return _operation(self.sql(plan.left), "||", self.sql(plan.right), returns=String())

    def _Comparison(self, plan: p.Comparison) -> ColumnElement[Any]:
        bounded = self.age_bound(plan)
        if bounded is not None:
            return bounded
        left, right = self.sql(plan.left), self.sql(plan.right)
        if plan.operand_type is T.TEXT and plan.op not in {"=", "!="}:
            left, right = OrderingKey(left), OrderingKey(right)
        return _compare(left, plan.op, right)

    def age_bound(self, plan: p.Comparison) -> ColumnElement[Any] | None:
        """``days_ago <= 90`` as ``occurred_at >= <midnight UTC 90 days ago>``: the same rows (days_ago
        is a whole number of UTC days), but a condition an index on the date can serve."""
        age, bound, op = plan.left, plan.right, plan.op
        if isinstance(bound, p.DaysAgo) and isinstance(age, p.Literal):
            age, bound, op = bound, age, _MIRRORED.get(op, op)
        if not (isinstance(age, p.DaysAgo) and isinstance(bound, p.Literal) and isinstance(bound.value, float)):
            return None
        limit = bound.value
        if op not in _MIRRORED or abs(limit) > _AGE_LIMIT:
            return None
        # a whole-number bound: < n is <= ceil(n) - 1, > n is >= floor(n) + 1
        days = {"<": math.ceil(limit) - 1, "<=": math.floor(limit), ">": math.floor(limit) + 1, ">=": math.ceil(limit)}[
            op
        ]
        newest = op in {"<", "<="}  # days_ago <= d: on or after the day d days ago
        day = self.clock() - timedelta(days=days) + (timedelta() if newest else timedelta(days=1))
        column = age.age.column()
        if age.age.type is T.DATETIME:
            edge: ColumnElement[Any] = literal(datetime.combine(day, time(0), tzinfo=UTC), UTCDateTime())
        else:
            edge = literal(day, Date())
        return _compare(column, ">=" if newest else "<", edge)

    def _Logical(self, plan: p.Logical) -> ColumnElement[Any]:
        join = and_ if plan.op == "AND" else or_
        return join(self.sql(plan.left), self.sql(plan.right))

    def _Not(self, plan: p.Not) -> ColumnElement[Any]:
        return not_(self.sql(plan.operand))

    def _IsNull(self, plan: p.IsNull) -> ColumnElement[Any]:
        operand = self.sql(plan.operand)
        return operand.is_not(None) if plan.negated else operand.is_(None)

    # functions

    def _If(self, plan: p.If) -> ColumnElement[Any]:
        return case((self.sql(plan.condition), self.sql(plan.then)), else_=self.sql(plan.otherwise))

    def _Coalesce(self, plan: p.Coalesce) -> ColumnElement[Any]:
        items = [self.sql(item) for item in plan.items]
        return items[0] if len(items) == 1 else func.coalesce(*items)

    def _Round(self, plan: p.Round) -> ColumnElement[Any]:
        # sign(x) · floor(|x|·10ⁿ + 0.5) / 10ⁿ; |x|·10ⁿ ≥ 2⁵² is already whole, and stays x
        x = self.sql(plan.operand)
        factor = _number(float(10 ** abs(plan.digits)))
        scaled = _arith("*" if plan.digits >= 0 else "/", func.abs(x, type_=Float()), factor)
        floored = FloorOfNonNegative(_arith("+", scaled, _number(0.5)))
        rounded = _arith("/" if plan.digits >= 0 else "*", floored, factor)
        return case(
            (_compare(scaled, ">=", _number(_NO_FRACTION)), x),
            (_compare(x, "<", _number(0.0)), Negated(rounded)),
            else_=rounded,
        )

    def _Abs(self, plan: p.Abs) -> ColumnElement[Any]:
        return func.abs(self.sql(plan.operand), type_=Float())

    def _Extreme(self, plan: p.Extreme) -> ColumnElement[Any]:
        items = [self.sql(item) for item in plan.items]
        if plan.type is T.TEXT:
            items = [OrderingKey(item) for item in items]
        element = Least if plan.op == "MIN" else Greatest
        return type_coerce(element(*items), result_type(plan.type))

    def date_of(self, kind: FormulaType, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return UtcDate(value) if kind is T.DATETIME else DateValue(value)

    def _DaysBetween(self, plan: p.DaysBetween) -> ColumnElement[Any]:
        start = self.date_of(plan.start.type, self.sql(plan.start))
        end = self.date_of(plan.end.type, self.sql(plan.end))
        return WholeDays(start, end)

    def _DateOf(self, plan: p.DateOf) -> ColumnElement[Any]:
        return UtcDate(self.sql(plan.operand))

    def _DatePart(self, plan: p.DatePart) -> ColumnElement[Any]:
        value = self.date_of(plan.operand.type, self.sql(plan.operand))
        return YearOf(value) if plan.part == "YEAR" else MonthOf(value)

    def _Contains(self, plan: p.Contains) -> ColumnElement[Any]:
        return ContainsText(self.sql(plan.text), self.sql(plan.part))

    # aggregates

    def _AggregateOf(self, plan: p.AggregateOf) -> ColumnElement[Any]:
        relation, field = plan.relation, plan.field
        conditions = [relation.correlate()]
        if plan.where is not None:
            conditions.append(self.sql(plan.where))
        raw = field.column() if field is not None else None
        scale = float(10**field.scale) if field is not None and field.scale else None
        function = plan.function

        def subquery(value: ColumnElement[Any]) -> ColumnElement[Any]:
            return select(value).where(*conditions).scalar_subquery()

        if function is p.Aggregate.COUNT:
            return AsNumber(subquery(func.count(raw) if raw is not None else func.count()))
        assert raw is not None  # the checker requires a field for all but COUNT
        assert field is not None
        if function is p.Aggregate.SUM:
            total = AsNumber(subquery(func.coalesce(func.sum(raw), literal(0, Integer()))))
            return _arith("/", total, _number(scale)) if scale else total
        if function is p.Aggregate.AVG:
            count: ColumnElement[Any] = AsNumber(func.count(raw))
            if scale:
                count = _arith("*", count, _number(scale))
            average = _arith("/", AsNumber(func.sum(raw)), func.nullif(count, _number(0.0), type_=Float()))
            return subquery(average)
        # MIN / MAX
        aggregate = func.min if function is p.Aggregate.MIN else func.max
        if field.type is T.NUMBER:
            extreme = AsNumber(subquery(aggregate(raw)))
            return _arith("/", extreme, _number(scale)) if scale else extreme
        if field.type is T.TEXT:
            return subquery(aggregate(OrderingKey(raw)))
        return subquery(aggregate(raw, type_=result_type(field.type)))


def compile_plan(plan: p.Plan, *, clock: Callable[[], date] = today) -> ColumnElement[Any]:
    """The SQL of a checked formula (see the module's notes on sameness across databases)."""
    return SqlCompiler(clock).compile(plan)
