"""The formula language without a database: what parses, what type-checks, and the errors a user
sees — each with the line and column it points at."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table

from closeloop.core.errors import ValidationFailed
from closeloop.db.types import Money, UTCDateTime
from closeloop.governance.formulas import (
    FormulaError,
    FormulaSchema,
    FormulaType,
    Relation,
    check_formula,
    compile_formula,
    evaluate_reference,
    field_of_column,
    normalize,
    parse,
)
from closeloop.governance.formulas.checker import MAX_WEIGHT
from closeloop.governance.formulas.syntax import MAX_DEPTH, MAX_LENGTH, render
from tests.governance.test_formulas_sql import formula

metadata = MetaData()
DEALS = Table(
    "deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", Money),
    Column("stage", String(20)),
    Column("close_on", Date),
    Column("opened_at", UTCDateTime()),
    Column("won", Boolean),
)
VISITS = Table(
    "visits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deal_id", Integer),
    Column("kind", String(20)),
    Column("minutes", Integer),
    Column("occurred_at", UTCDateTime()),
)
VISIT_SCHEMA = FormulaSchema(
    "visit", {name: field_of_column(name, VISITS.c[name], noun="visit") for name in ("kind", "minutes", "occurred_at")}
)
SCHEMA = FormulaSchema(
    "deal",
    {
        name: field_of_column(name, DEALS.c[name], noun="deal")
        for name in ("amount", "stage", "close_on", "opened_at", "won")
    },
    {"visits": Relation("visits", VISIT_SCHEMA, lambda: VISITS.c.deal_id == DEALS.c.id, age_field="occurred_at")},
)


def error_of(text: str) -> FormulaError:
    with pytest.raises(FormulaError) as raised:
        compile_formula(text, SCHEMA)
    return raised.value


# --- syntax errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("amount +", "the formula ends too early; expected a value", 1, 9),
        ("(amount", "the formula ends too early; expected ')'", 1, 8),
        ("amount < 1 < 2", "unexpected '<'; comparisons cannot be chained", 1, 12),
        ("amount $ 2", "unexpected character '$'", 1, 8),
        ("ROUND(amount,)", "unexpected ')'; expected a value", 1, 14),
        ('stage = "won', "this text has no closing quote", 1, 9),
        ('stage = "w\\qn"', "unknown escape \\q in a text", 1, 11),
        ("stage = \n  “won”", "use straight quotes", 2, 3),
        ("won = NOT won", "unexpected 'NOT'; expected a value", 1, 7),
        ("amount amount", "unexpected 'amount'; expected an operator or the end of the formula", 1, 8),
        ("   ", "the formula is empty", 1, 1),
        ("1e999", "this number is too large", 1, 1),
        ('stage = "\\u0000"', "a text cannot contain the NUL character", 1, 9),
    ],
)
def test_a_syntax_error_says_what_and_where(text: str, message: str, line: int, column: int) -> None:
    error = error_of(text)

    assert error.reason.startswith(message), error.reason
    assert (error.line, error.column) == (line, column)
    problem = error.problems[0]
    assert problem.field == "expression"
    assert problem.message.endswith(f"(at line {line}, column {column})")
    assert error.extra == {"position": error.position, "end": error.span.end, "line": line, "column": column}
    assert isinstance(error, ValidationFailed)
    assert error.status == 422


def test_the_position_counts_characters_not_bytes() -> None:
    error = error_of('IF(stage = "赢单", 1, ) ')
    assert (error.position, error.column) == (20, 21)


def test_full_width_parentheses_and_commas_are_read_as_ascii() -> None:
    assert normalize("ROUND（amount，2）") == "ROUND(amount, 2)"


def test_an_error_can_name_another_request_field() -> None:
    error = error_of("amount +").for_field("condition")
    assert error.problems[0].field == "condition"
    assert error.line == 1


def test_limits_on_length_depth_and_size() -> None:
    assert error_of("1" * (MAX_LENGTH + 1)).reason.startswith(f"a formula has at most {MAX_LENGTH} characters")
    deep = "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1)
    assert error_of("-" * (MAX_DEPTH + 2) + "1").reason.startswith("the formula nests more than")
    assert compile_formula(deep, SCHEMA).normalized == "1"  # parentheses alone do not nest the tree
    rounds = "amount"
    for _ in range(8):
        rounds = f"ROUND({rounds}, 1)"
    assert error_of(rounds).reason.startswith("the formula is too large to run")
    assert MAX_WEIGHT < 4**8


# --- type errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ('amount + "x"', "cannot add text to number", 8),
        ('stage + "x"', "cannot add text to text; use & to join texts", 7),
        ("close_on - close_on", "cannot subtract date from date; use DAYS_BETWEEN(start, end)", 10),
        ("amount & stage", "& joins texts, not a number", 1),
        ("amount = stage", "'=' compares values of one type: a number and a text", 10),
        ("close_on < opened_at", "'<' compares values of one type: a date and a date-time; DATE(x) gives", 12),
        ("won < won", "true/false values can only be compared with = or !=, not <", 5),
        ("IF(amount, 1, 2)", "IF's first value is the condition: true/false, not a number", 4),
        ('IF(won, 1, "x")', "IF's two branches must be values of one type: a number and a text", 12),
        ("NOT amount", "NOT needs true/false, not a number", 5),
        ("won AND 1", "AND joins true/false values, not a number", 9),
        ("ROUND(amount, 1.5)", "ROUND's decimal places must be a whole number from -10 to 10", 15),
        ("ROUND(amount, 1, 2)", "ROUND takes 1 or 2 values, not 3", 1),
        ("TODAY(1)", "TODAY takes no values, not 1", 1),
        ('DATE("2026-02-30")', "2026-02-30 is not a date", 6),
        ('DATE("30/01/2026")', 'DATE reads a date written as "YYYY-MM-DD"', 6),
        ("DAYS_BETWEEN(amount, close_on)", "DAYS_BETWEEN needs dates or date-times, not a number", 14),
        ("NULL", "the formula is always empty (NULL)", 1),
        ("MIN(amount)", "MIN of one value: give two or more values", 1),
    ],
)
def test_a_type_error_says_what_and_where(text: str, message: str, column: int) -> None:
    error = error_of(text)
    assert error.reason.startswith(message), error.reason
    assert error.column == column


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("amout * 2", "unknown field 'amout'; did you mean 'amount'?", 1),
        ("Amount * 2", "unknown field 'Amount'; did you mean 'amount'?", 1),
        ("ROUDN(amount)", "unknown function ROUDN; did you mean 'ROUND'", 1),
        ("visits", "'visits' reads a list of related records; use an aggregate such as COUNT(visits)", 1),
        ("visits.minutes + 1", "'visits.minutes' reads a list of related records", 1),
        ("SUM(visit.minutes)", "unknown list of related records 'visit'; did you mean 'visits'?", 5),
        ("SUM(visits.minuts)", "unknown field 'minuts' of visits; did you mean 'minutes'?", 5),
        ("SUM(amount)", "'amount' is a field of this record, not a list of related records", 5),
        ("SUM(visits)", "SUM needs a field of visits, as in SUM(visits.kind)", 5),
        ("SUM(visits.kind)", "SUM adds up numbers; visits.kind is a text", 5),
        ("COUNT(visits WHERE minutes)", "WHERE needs a condition (true/false), not a number", 20),
        (
            "COUNT(visits WHERE amount > 1)",
            "unknown field 'amount' of visits; WHERE reads the related record's own",
            20,
        ),
        ("COUNT(visits WHERE COUNT(visits) > 1)", "an aggregate cannot be inside another aggregate's WHERE", 20),
        ("ROUND(amount WHERE won)", "WHERE belongs to an aggregate over related records", 20),
        ("days_ago > 3", "days_ago is a field of related records: use it inside WHERE", 1),
        ("SUM(visits.days_ago)", "unknown field 'days_ago' of visits (days_ago is only for WHERE)", 5),
    ],
)
def test_names_are_checked_against_the_schema_with_suggestions(text: str, message: str, column: int) -> None:
    error = error_of(text)
    assert error.reason.startswith(message), error.reason
    assert error.column == column


def test_nothing_is_ever_evaluated_as_python() -> None:
    assert error_of('__import__("os").system("true")').reason.startswith("unexpected '.'")
    assert error_of("__import__(1)").reason.startswith("unknown function __IMPORT__")


# --- what a checked formula tells --------------------------------------------------------------------


def test_a_checked_formula_knows_its_type_inputs_sources_and_normal_form() -> None:
    checked = check_formula(
        'if(won and stage in ("won","closed"), round(amount/ 3,2), sum(visits.minutes where kind="visit" and '
        "days_ago<=30))",
        SCHEMA,
    )

    assert checked.type is FormulaType.NUMBER
    assert checked.normalized == (
        'IF(won AND stage IN ("won", "closed"), ROUND(amount / 3, 2), '
        'SUM(visits.minutes WHERE kind = "visit" AND days_ago <= 30))'
    )
    assert checked.inputs == {
        ("deal", "won"),
        ("deal", "stage"),
        ("deal", "amount"),
        ("visit", "minutes"),
        ("visit", "kind"),
        ("visit", "occurred_at"),
    }
    assert checked.sources == {"deal", "visit"}
    assert checked.masked_inputs(lambda noun: frozenset({"amount"}) if noun == "deal" else frozenset()) == [
        ("deal", "amount")
    ]
    assert checked.masked_inputs(lambda noun: frozenset()) == []


def test_count_without_a_field_reads_no_field_but_still_the_related_records() -> None:
    checked = check_formula("COUNT(visits)", SCHEMA)
    assert checked.inputs == frozenset()
    assert checked.sources == {"deal", "visit"}


def test_only_a_true_false_formula_is_a_filter() -> None:
    assert compile_formula("amount > 1", SCHEMA).as_filter() is not None
    with pytest.raises(FormulaError, match="a filter needs a true/false formula"):
        compile_formula("amount", SCHEMA).as_filter()


def test_the_reference_follows_the_related_rows_it_is_given() -> None:
    checked = check_formula('COUNT(visits WHERE kind = "visit") + SUM(visits.minutes)', SCHEMA)
    related: dict[str, list[dict[str, Any]]] = {
        "visits": [{"kind": "visit", "minutes": 30}, {"kind": "call", "minutes": None}]
    }
    assert evaluate_reference(checked.plan, {}, today=date(2026, 1, 1), related=related) == 31.0


# --- normal form ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.sampled_from(("number", "text", "date", "datetime", "boolean")).flatmap(formula))
def test_the_normal_form_parses_back_to_itself(text: str) -> None:
    normalized = normalize(text)
    assert normalize(normalized) == normalized
    assert render(parse(normalized)) == render(parse(text))


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("-(-amount)", "--amount"),
        ("-(amount * 2)", "-(amount * 2)"),
        ("(-amount) * 2", "-amount * 2"),
        ("not (won = won)", "NOT won = won"),
        ("(not won) = won", "(NOT won) = won"),
        ("won or (won and won)", "won OR won AND won"),
        ("(won or won) and won", "(won OR won) AND won"),
        ("(stage & stage) = stage", "stage & stage = stage"),
        ("stage <> 'a\"b'", 'stage != "a\\"b"'),
        ("amount == 1.50", "amount = 1.5"),
        ("count(visits where not kind is null)", "COUNT(visits WHERE NOT kind IS NULL)"),
        ("stage not in ('a')", 'stage NOT IN ("a")'),
        ("0.1e1 + 1e20", "1 + 1e+20"),
    ],
)
def test_the_normal_form_keeps_only_the_parentheses_that_matter(text: str, normalized: str) -> None:
    assert normalize(text) == normalized
    assert normalize(normalized) == normalized
