"""Formula fields (GOV-2): a small, safe formula language, parsed once, type-checked against an
abstract schema, and compiled to SQL that runs in the database and gives the same values on SQLite
and PostgreSQL. Nothing in it is ever evaluated by Python's ``eval``.

Use::

    compiled = compile_formula('SUM(orders.amount WHERE days_ago <= 90) / 3', schema)
    compiled.expression   # a SQLAlchemy column expression, correlated to the schema's table
    compiled.type         # FormulaType.NUMBER
    compiled.inputs       # {("order", "total"), ("order", "ordered_at")}
    compiled.normalized   # 'SUM(orders.amount WHERE days_ago <= 90) / 3'

A bad formula raises :class:`FormulaError` (a 422 naming ``expression``, with the position).
See ``docs/architecture.md`` ("Formula language") for the grammar and the semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement

from closeloop.governance.formulas import plan as p
from closeloop.governance.formulas.checker import FUNCTIONS, check
from closeloop.governance.formulas.errors import FormulaError, Span
from closeloop.governance.formulas.reference import evaluate as evaluate_reference
from closeloop.governance.formulas.schema import (
    Field,
    FieldIdentity,
    FormulaSchema,
    FormulaType,
    Relation,
    field_of_column,
)
from closeloop.governance.formulas.sql import compile_plan, today
from closeloop.governance.formulas.syntax import normalize, parse, render


@dataclass(frozen=True)
class Checked:
    """A formula that parsed and type-checked: what it is, without its SQL."""

    text: str
    normalized: str
    type: FormulaType
    plan: p.Plan
    #: every stored field the formula reads, as ``(noun, field)``
    inputs: frozenset[FieldIdentity]
    #: every kind of record it reads (the record itself and the related records it aggregates)
    sources: frozenset[str]

    def masked_inputs(self, hidden: Callable[[str], frozenset[str]]) -> list[FieldIdentity]:
        """The inputs hidden from someone, given ``hidden(noun)`` → the fields of ``noun`` they cannot
        read (``governance.fields.masked_fields`` for a role). A formula that reads one is masked."""
        return sorted(identity for identity in self.inputs if identity[1] in hidden(identity[0]))


@dataclass(frozen=True)
class Compiled(Checked):
    """A checked formula and its SQL expression (labelled by the caller as it likes)."""

    expression: ColumnElement[Any]

    def as_filter(self) -> ColumnElement[bool]:
        """The formula as a WHERE condition (it must be true/false; NULL keeps no row)."""
        if self.type is not FormulaType.BOOLEAN:
            raise FormulaError(
                f"a filter needs a true/false formula; this one gives {self.type.value}", Span.at(self.text, 0)
            )
        condition: ColumnElement[bool] = self.expression
        return condition


def _lineage(plan: p.Plan, noun: str) -> tuple[frozenset[FieldIdentity], frozenset[str]]:
    inputs: set[FieldIdentity] = set()
    sources = {noun}
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, p.FieldValue):
            inputs.add(node.field.source)
        elif isinstance(node, p.DaysAgo):
            inputs.add(node.age.source)
        elif isinstance(node, p.AggregateOf):
            sources.add(node.relation.schema.noun)
            if node.field is not None:
                inputs.add(node.field.source)
        stack.extend(p.children(node))
    sources.update(identity[0] for identity in inputs)
    return frozenset(inputs), frozenset(sources)


def check_formula(text: str, schema: FormulaSchema) -> Checked:
    """Parse and type-check ``text`` against ``schema`` (or raise :class:`FormulaError`)."""
    tree = parse(text)
    plan = check(tree, schema)
    inputs, sources = _lineage(plan, schema.noun)
    return Checked(text, render(tree), plan.type, plan, inputs, sources)


def compile_formula(text: str, schema: FormulaSchema, *, clock: Callable[[], date] = today) -> Compiled:
    """Parse, check and compile ``text``; ``clock`` gives TODAY(), read once, now: compile a formula
    for each use (it is cheap: parsing is cached), not once for days."""
    checked = check_formula(text, schema)
    expression = compile_plan(checked.plan, clock=clock)
    return Compiled(
        checked.text, checked.normalized, checked.type, checked.plan, checked.inputs, checked.sources, expression
    )


__all__ = [
    "FUNCTIONS",
    "Checked",
    "Compiled",
    "Field",
    "FieldIdentity",
    "FormulaError",
    "FormulaSchema",
    "FormulaType",
    "Relation",
    "Span",
    "check_formula",
    "compile_formula",
    "evaluate_reference",
    "field_of_column",
    "normalize",
    "parse",
]
