"""Type checking: a syntax tree and a schema in, a typed :mod:`plan` out, or an error with a position.

Types never convert silently: numbers, texts, dates, date-times and true/false each combine only
with their own kind (``NULL`` fits anywhere). Unknown names get close-match suggestions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from closeloop.governance.formulas import plan as p
from closeloop.governance.formulas import syntax as s
from closeloop.governance.formulas.errors import FormulaError, Span
from closeloop.governance.formulas.schema import Field, FormulaSchema, FormulaType, Relation

T = FormulaType

#: how large the SQL of one formula may grow (nodes, after ROUND and MIN/MAX repeat their arguments)
MAX_WEIGHT = 20_000
#: ROUND's digits
MAX_DIGITS = 10
DAYS_AGO = "days_ago"

_WORDS = {
    T.NUMBER: "a number",
    T.TEXT: "a text",
    T.DATE: "a date",
    T.DATETIME: "a date-time",
    T.BOOLEAN: "true/false",
    T.NULL: "NULL",
}
_SHORT = {T.NUMBER: "number", T.TEXT: "text", T.DATE: "date", T.DATETIME: "date-time", T.BOOLEAN: "true/false"}

FUNCTIONS = (
    "ABS",
    "AVG",
    "COALESCE",
    "CONTAINS",
    "COUNT",
    "DATE",
    "DAYS_BETWEEN",
    "IF",
    "MAX",
    "MIN",
    "MONTH",
    "ROUND",
    "SUM",
    "TODAY",
    "YEAR",
)
AGGREGATES = frozenset(p.Aggregate)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _words(kind: FormulaType) -> str:
    return _WORDS[kind]


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        lowered = {choice.lower(): choice for choice in choices}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


@dataclass(frozen=True, slots=True)
class _Scope:
    """What names mean where the checker is: the record's fields, or inside an aggregate's WHERE the
    related record's fields (and ``days_ago``)."""

    schema: FormulaSchema
    relation: Relation | None = None


class Checker:
    def __init__(self, schema: FormulaSchema) -> None:
        self.schema = schema

    # --- entry ----------------------------------------------------------------------------------

    def check(self, node: s.Node) -> p.Plan:
        result = self.visit(node, _Scope(self.schema))
        if result.type is T.NULL:
            raise FormulaError("the formula is always empty (NULL); give it a value", node.span)
        size = weight(result)
        if size > MAX_WEIGHT:
            raise FormulaError(
                f"the formula is too large to run ({size} parts after expansion, at most {MAX_WEIGHT}); "
                "nest fewer ROUND, MIN and MAX calls",
                node.span,
            )
        return result

    def visit(self, node: s.Node, scope: _Scope) -> p.Plan:
        match node:
            case s.Number(value=value):
                return p.Literal(T.NUMBER, value)
            case s.String(value=value):
                return p.Literal(T.TEXT, value)
            case s.Boolean(value=value):
                return p.Literal(T.BOOLEAN, value)
            case s.Null():
                return p.Literal(T.NULL, None)
            case s.Ref():
                return self.reference(node, scope)
            case s.Negate():
                return self.negate(node, scope)
            case s.Binary():
                return self.binary(node, scope)
            case s.Compare():
                return self.compare(node.op, node.left, node.right, node.op_span, scope)
            case s.IsNull(operand=operand, negated=negated):
                return p.IsNull(T.BOOLEAN, self.typed(self.visit(operand, scope), T.TEXT), negated)
            case s.InList():
                return self.in_list(node, scope)
            case s.Call():
                return self.call(node, scope)
        raise FormulaError("this part of the formula is not understood", node.span)  # pragma: no cover

    # --- names ----------------------------------------------------------------------------------

    def reference(self, node: s.Ref, scope: _Scope) -> p.Plan:
        if scope.relation is not None:
            return self.related_reference(node, scope.relation)
        schema = scope.schema
        first = node.parts[0]
        if node.dotted in schema.fields:  # a field, or a dotted one such as custom.<name>
            return p.FieldValue(schema.fields[node.dotted].type, schema.fields[node.dotted])
        if first in schema.relations:
            relation = schema.relations[first]
            example = next(iter(relation.schema.fields), "field")
            raise FormulaError(
                f"'{node.dotted}' reads a list of related records; use an aggregate such as "
                f"COUNT({first}) or SUM({first}.{example})",
                node.span,
            )
        if len(node.parts) == 1 and first == DAYS_AGO:
            raise FormulaError(
                "days_ago is a field of related records: use it inside WHERE, "
                "as in COUNT(activities WHERE days_ago <= 30)",
                node.span,
            )
        dotted = [name for name in schema.fields if name.startswith(first + ".")]
        if len(node.parts) > 1 and dotted:  # custom.<name>: a field of a group that has others
            raise FormulaError(f"unknown field '{node.dotted}'" + _suggest(node.dotted, dotted), node.span)
        if len(node.parts) > 1:
            raise FormulaError(
                f"unknown list of related records '{first}'" + _suggest(first, list(schema.relations)), node.span
            )
        raise FormulaError(f"unknown field '{first}'" + _suggest(first, schema.names()), node.span)

    def related_reference(self, node: s.Ref, relation: Relation) -> p.Plan:
        parts = node.parts
        if len(parts) == 2 and parts[0] == relation.name:
            parts = parts[1:]
        child = relation.schema
        if len(parts) > 1 and parts[0] == relation.name:
            parts = parts[1:]
        if len(parts) > 1 and ".".join(parts) in child.fields:
            return p.FieldValue(child.fields[".".join(parts)].type, child.fields[".".join(parts)])
        if len(parts) == 1:
            name = parts[0]
            if name in child.fields:
                return p.FieldValue(child.fields[name].type, child.fields[name])
            if name == DAYS_AGO:
                return self.days_ago(node, relation)
            choices = [*child.fields, *([DAYS_AGO] if relation.age_field else [])]
            raise FormulaError(
                f"unknown field '{name}' of {relation.name}"
                + _suggest(name, choices)
                + ("" if _suggest(name, choices) else "; WHERE reads the related record's own fields"),
                node.span,
            )
        raise FormulaError(
            f"'{node.dotted}' is not a field of {relation.name}; WHERE reads the related record's own fields",
            node.span,
        )

    def days_ago(self, node: s.Ref, relation: Relation) -> p.Plan:
        if relation.age_field is None or relation.age_field not in relation.schema.fields:
            raise FormulaError(f"{relation.name} have no date that days_ago could count from", node.span)
        age = relation.schema.fields[relation.age_field]
        return p.DaysAgo(T.NUMBER, relation, age)

    # --- operators ------------------------------------------------------------------------------

    def negate(self, node: s.Negate, scope: _Scope) -> p.Plan:
        operand = self.visit(node.operand, scope)
        if node.op == "NOT":
            self.expect(operand, T.BOOLEAN, node.operand.span, "NOT needs true/false")
            return p.Not(T.BOOLEAN, self.typed(operand, T.BOOLEAN))
        self.expect(operand, T.NUMBER, node.operand.span, "'-' needs a number")
        return p.Negative(T.NUMBER, self.typed(operand, T.NUMBER))

    def binary(self, node: s.Binary, scope: _Scope) -> p.Plan:
        left = self.visit(node.left, scope)
        right = self.visit(node.right, scope)
        if node.op in {"AND", "OR"}:
            for side, source in ((left, node.left), (right, node.right)):
                self.expect(side, T.BOOLEAN, source.span, f"{node.op} joins true/false values")
            return p.Logical(T.BOOLEAN, node.op, self.typed(left, T.BOOLEAN), self.typed(right, T.BOOLEAN))
        if node.op == "&":
            for side, source in ((left, node.left), (right, node.right)):
                self.expect(side, T.TEXT, source.span, "& joins texts")
            return p.Concat(T.TEXT, self.typed(left, T.TEXT), self.typed(right, T.TEXT))
        if {left.type, right.type} <= {T.NUMBER, T.NULL}:
            return p.Arithmetic(T.NUMBER, node.op, self.typed(left, T.NUMBER), self.typed(right, T.NUMBER))
        raise FormulaError(self.arithmetic_message(node.op, left.type, right.type), node.op_span)

    @staticmethod
    def arithmetic_message(op: str, left: FormulaType, right: FormulaType) -> str:
        a, b = _SHORT.get(left, "NULL"), _SHORT.get(right, "NULL")
        message = {
            "+": f"cannot add {b} to {a}",
            "-": f"cannot subtract {b} from {a}",
            "*": f"cannot multiply {a} by {b}",
            "/": f"cannot divide {a} by {b}",
        }[op]
        if op == "+" and T.TEXT in {left, right}:
            message += "; use & to join texts"
        if {left, right} & {T.DATE, T.DATETIME}:
            message += "; use DAYS_BETWEEN(start, end) for the days between two dates"
        return message

    def compare(self, op: str, left_node: s.Node, right_node: s.Node, op_span: Span, scope: _Scope) -> p.Plan:
        left = self.visit(left_node, scope)
        right = self.visit(right_node, scope)
        kind = self.unify([left, right], [left_node.span, right_node.span], f"'{op}' compares")
        if kind is T.BOOLEAN and op not in {"=", "!="}:
            raise FormulaError(f"true/false values can only be compared with = or !=, not {op}", op_span)
        left, right = self.typed(left, kind), self.typed(right, kind)
        return p.Comparison(T.BOOLEAN, op, left, right, kind)

    def in_list(self, node: s.InList, scope: _Scope) -> p.Plan:
        operand = self.visit(node.operand, scope)
        options = [self.visit(option, scope) for option in node.options]
        kind = self.unify([operand, *options], [node.operand.span, *(o.span for o in node.options)], "IN compares")
        if kind is T.BOOLEAN:
            raise FormulaError("IN compares numbers, texts or dates, not true/false values", node.operand.span)
        tests = [p.Comparison(T.BOOLEAN, "=", self.typed(operand, kind), self.typed(o, kind), kind) for o in options]
        result = _balanced_or(tests)
        return p.Not(T.BOOLEAN, result) if node.negated else result

    # --- types ----------------------------------------------------------------------------------

    @staticmethod
    def expect(plan: p.Plan, kind: FormulaType, span: Span, what: str) -> None:
        if plan.type not in {kind, T.NULL}:
            raise FormulaError(f"{what}, not {_words(plan.type)}", span)

    @staticmethod
    def unify(plans: Sequence[p.Plan], spans: Sequence[Span], what: str) -> FormulaType:
        """The one type all ``plans`` share (NULL fits any); an error at the first that differs."""
        kind = T.NULL
        for plan, span in zip(plans, spans, strict=True):
            if plan.type is T.NULL:
                continue
            if kind is T.NULL:
                kind = plan.type
            elif plan.type is not kind:
                hint = ""
                if {kind, plan.type} == {T.DATE, T.DATETIME}:
                    hint = "; DATE(x) gives the date of a date-time"
                raise FormulaError(f"{what} values of one type: {_words(kind)} and {_words(plan.type)}{hint}", span)
        return kind

    @staticmethod
    def typed(plan: p.Plan, kind: FormulaType) -> p.Plan:
        """A NULL takes the type of its place (the SQL needs it typed on PostgreSQL). Whatever has
        the type NULL (``NULL``, ``IF(c, NULL, NULL)``, ``COALESCE(NULL)``) is NULL whatever happens."""
        if plan.type is T.NULL:
            return p.Literal(kind, None)
        return plan

    # --- functions ------------------------------------------------------------------------------

    def call(self, node: s.Call, scope: _Scope) -> p.Plan:
        name = node.name
        if name not in FUNCTIONS:
            raise FormulaError(f"unknown function {name}" + _suggest(name, FUNCTIONS), node.name_span)
        if name in AGGREGATES and self.is_aggregate(node, scope):
            return self.aggregate(node, scope)
        if node.where is not None:
            raise FormulaError(
                "WHERE belongs to an aggregate over related records, such as SUM(orders.amount WHERE days_ago <= 90)",
                node.where.span,
            )
        handler: Callable[[s.Call, _Scope], p.Plan] = getattr(self, f"call_{name.lower()}")
        return handler(node, scope)

    def arity(self, node: s.Call, low: int, high: int | None = None) -> None:
        count = len(node.arguments)
        high = low if high is None else high
        if low <= count <= high:
            return
        if high == low:
            wanted = f"{low} value{'s' if low != 1 else ''}" if low else "no values"
        elif high > 50:
            wanted = f"{low} or more values"
        else:
            wanted = f"{low} to {high} values" if high - low > 1 else f"{low} or {high} values"
        raise FormulaError(f"{node.name} takes {wanted}, not {count}", node.name_span)

    def arguments(self, node: s.Call, scope: _Scope) -> list[p.Plan]:
        return [self.visit(argument, scope) for argument in node.arguments]

    def call_if(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 3)
        condition, then, otherwise = self.arguments(node, scope)
        self.expect(condition, T.BOOLEAN, node.arguments[0].span, "IF's first value is the condition: true/false")
        kind = self.unify([then, otherwise], [a.span for a in node.arguments[1:]], "IF's two branches must be")
        if kind is T.NULL:
            return p.Literal(T.NULL, None)
        return p.If(kind, self.typed(condition, T.BOOLEAN), self.typed(then, kind), self.typed(otherwise, kind))

    def call_coalesce(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 1, 99)
        items = self.arguments(node, scope)
        kind = self.unify(items, [a.span for a in node.arguments], "COALESCE takes")
        if kind is T.NULL:
            return p.Literal(T.NULL, None)
        return p.Coalesce(kind, tuple(self.typed(item, kind) for item in items))

    def call_round(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 1, 2)
        operand = self.visit(node.arguments[0], scope)
        self.expect(operand, T.NUMBER, node.arguments[0].span, "ROUND needs a number")
        digits = 0
        if len(node.arguments) == 2:
            digits = self.whole_number(node.arguments[1])
        return p.Round(T.NUMBER, self.typed(operand, T.NUMBER), digits)

    @staticmethod
    def whole_number(node: s.Node) -> int:
        sign = 1
        if isinstance(node, s.Negate) and node.op == "-":
            sign, node = -1, node.operand
        if isinstance(node, s.Number) and node.value.is_integer() and abs(node.value) <= MAX_DIGITS:
            return sign * int(node.value)
        raise FormulaError(
            f"ROUND's decimal places must be a whole number from -{MAX_DIGITS} to {MAX_DIGITS}, written out",
            node.span,
        )

    def call_abs(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 1)
        (operand,) = self.arguments(node, scope)
        self.expect(operand, T.NUMBER, node.arguments[0].span, "ABS needs a number")
        return p.Abs(T.NUMBER, self.typed(operand, T.NUMBER))

    def call_min(self, node: s.Call, scope: _Scope) -> p.Plan:
        return self.extreme(node, scope)

    def call_max(self, node: s.Call, scope: _Scope) -> p.Plan:
        return self.extreme(node, scope)

    def extreme(self, node: s.Call, scope: _Scope) -> p.Plan:
        if len(node.arguments) == 1:
            raise FormulaError(
                f"{node.name} of one value: give two or more values, or a field of related records "
                f"such as {node.name}(orders.amount)",
                node.name_span,
            )
        self.arity(node, 2, 99)
        items = self.arguments(node, scope)
        kind = self.unify(items, [a.span for a in node.arguments], f"{node.name} compares")
        if kind is T.BOOLEAN:
            raise FormulaError(f"{node.name} compares numbers, texts or dates, not true/false", node.name_span)
        if kind is T.NULL:
            return p.Literal(T.NULL, None)
        return p.Extreme(kind, node.name, tuple(self.typed(item, kind) for item in items))

    def call_days_between(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 2)
        start, end = self.arguments(node, scope)
        for value, source in ((start, node.arguments[0]), (end, node.arguments[1])):
            if value.type not in {T.DATE, T.DATETIME, T.NULL}:
                raise FormulaError(f"DAYS_BETWEEN needs dates or date-times, not {_words(value.type)}", source.span)
        return p.DaysBetween(T.NUMBER, self.typed(start, T.DATE), self.typed(end, T.DATE))

    def call_today(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 0)
        return p.Today(T.DATE)

    def call_date(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 1)
        argument = node.arguments[0]
        if isinstance(argument, s.String):
            if not _ISO_DATE.fullmatch(argument.value):
                raise FormulaError('DATE reads a date written as "YYYY-MM-DD"', argument.span)
            try:
                return p.Literal(T.DATE, date.fromisoformat(argument.value))
            except ValueError:
                raise FormulaError(f"{argument.value} is not a date", argument.span) from None
        value = self.visit(argument, scope)
        if value.type is T.DATETIME:
            return p.DateOf(T.DATE, value)
        if value.type in {T.DATE, T.NULL}:
            return self.typed(value, T.DATE)
        raise FormulaError(
            f'DATE needs a date-time or a date written as "YYYY-MM-DD", not {_words(value.type)}', argument.span
        )

    def call_year(self, node: s.Call, scope: _Scope) -> p.Plan:
        return self.date_part(node, scope)

    def call_month(self, node: s.Call, scope: _Scope) -> p.Plan:
        return self.date_part(node, scope)

    def date_part(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 1)
        (value,) = self.arguments(node, scope)
        if value.type not in {T.DATE, T.DATETIME, T.NULL}:
            raise FormulaError(
                f"{node.name} needs a date or a date-time, not {_words(value.type)}", node.arguments[0].span
            )
        return p.DatePart(T.NUMBER, node.name, self.typed(value, T.DATE))

    def call_contains(self, node: s.Call, scope: _Scope) -> p.Plan:
        self.arity(node, 2)
        text, part = self.arguments(node, scope)
        for value, source in ((text, node.arguments[0]), (part, node.arguments[1])):
            self.expect(value, T.TEXT, source.span, "CONTAINS looks for a text in a text")
        return p.Contains(T.BOOLEAN, self.typed(text, T.TEXT), self.typed(part, T.TEXT))

    # --- aggregates -----------------------------------------------------------------------------

    def is_aggregate(self, node: s.Call, scope: _Scope) -> bool:
        if node.name in {"MIN", "MAX"}:
            if len(node.arguments) != 1:
                return False
            argument = node.arguments[0]
            relations = (scope.relation.schema if scope.relation else scope.schema).relations
            fields = (scope.relation.schema if scope.relation else scope.schema).fields
            return node.where is not None or (
                isinstance(argument, s.Ref)
                and argument.dotted not in fields
                and (argument.parts[0] in relations or len(argument.parts) > 1)
            )
        return True

    def aggregate(self, node: s.Call, scope: _Scope) -> p.Plan:
        function = p.Aggregate(node.name)
        if scope.relation is not None:
            raise FormulaError("an aggregate cannot be inside another aggregate's WHERE", node.name_span)
        if len(node.arguments) != 1 or not isinstance(node.arguments[0], s.Ref):
            raise FormulaError(
                f"{function} reads related records: write {function}(orders.amount) or "
                f"{function}(orders.amount WHERE …)"
                if function is not p.Aggregate.COUNT
                else "COUNT counts related records: write COUNT(activities) or COUNT(activities WHERE …)",
                node.arguments[0].span if node.arguments else node.name_span,
            )
        target = node.arguments[0]
        relation = self.relation(target)
        field: Field | None = None
        if len(target.parts) == 2:
            field = self.related_field(target, relation)
        elif ".".join(target.parts[1:]) in relation.schema.fields:  # orders.custom.<name>
            field = relation.schema.fields[".".join(target.parts[1:])]
        elif len(target.parts) > 2:
            raise FormulaError(f"'{target.dotted}' goes too deep: aggregate one field of related records", target.span)
        where: p.Plan | None = None
        if node.where is not None:
            where = self.visit(node.where, _Scope(relation.schema, relation))
            self.expect(where, T.BOOLEAN, node.where.span, "WHERE needs a condition (true/false)")
            where = self.typed(where, T.BOOLEAN)
        if function is p.Aggregate.COUNT:
            return p.AggregateOf(T.NUMBER, function, relation, field, where)
        if field is None:
            example = next(iter(relation.schema.fields), "field")
            raise FormulaError(
                f"{function} needs a field of {relation.name}, as in {function}({relation.name}.{example})",
                target.span,
            )
        if function in {p.Aggregate.SUM, p.Aggregate.AVG} and field.type is not T.NUMBER:
            raise FormulaError(f"{function} adds up numbers; {target.dotted} is {_words(field.type)}", target.span)
        if field.type is T.BOOLEAN:
            raise FormulaError(f"{function} compares numbers, texts or dates, not true/false", target.span)
        kind = T.NUMBER if function in {p.Aggregate.SUM, p.Aggregate.AVG} else field.type
        return p.AggregateOf(kind, function, relation, field, where)

    def relation(self, target: s.Ref) -> Relation:
        name = target.parts[0]
        if name in self.schema.relations:
            return self.schema.relations[name]
        if name in self.schema.fields:
            raise FormulaError(
                f"'{name}' is a field of this record, not a list of related records"
                + _suggest(name, list(self.schema.relations)),
                target.span,
            )
        raise FormulaError(
            f"unknown list of related records '{name}'" + _suggest(name, list(self.schema.relations)), target.span
        )

    @staticmethod
    def related_field(target: s.Ref, relation: Relation) -> Field:
        name = target.parts[1]
        if name in relation.schema.fields:
            return relation.schema.fields[name]
        hint = " (days_ago is only for WHERE)" if name == DAYS_AGO else ""
        raise FormulaError(
            f"unknown field '{name}' of {relation.name}{hint}" + _suggest(name, list(relation.schema.fields)),
            target.span,
        )


def _balanced_or(tests: Sequence[p.Plan]) -> p.Plan:
    """``a OR b OR c …`` as a balanced tree, so a long IN list stays shallow."""
    if len(tests) == 1:
        return tests[0]
    middle = len(tests) // 2
    return p.Logical(T.BOOLEAN, "OR", _balanced_or(tests[:middle]), _balanced_or(tests[middle:]))


def weight(plan: p.Plan) -> int:
    """The size of ``plan``'s SQL: ROUND repeats its operand four times, MIN/MAX each value once per
    value on SQLite."""
    inner = [weight(child) for child in p.children(plan)]
    if isinstance(plan, p.Round):
        return 4 * inner[0] + 8
    if isinstance(plan, p.Extreme):
        return len(plan.items) * sum(inner) + 1
    return 1 + sum(inner)


def check(node: s.Node, schema: FormulaSchema) -> p.Plan:
    """The typed plan of ``node`` against ``schema`` (or :class:`FormulaError`)."""
    return Checker(schema).check(node)
