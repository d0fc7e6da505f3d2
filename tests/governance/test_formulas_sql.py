"""Formulas compiled to SQL give the reference evaluator's values, on SQLite and on PostgreSQL.

A small pair of tables (records and their items) holds values chosen to be awkward: NULLs, zero,
negatives, halves for ROUND, texts that sort differently under a locale than by code point, times
late in the UTC day, items exactly on a ``days_ago`` boundary. Hypothesis writes well-typed
formulas over them; each runs in the database and in :mod:`~closeloop.governance.formulas.reference`,
record by record, and must agree exactly — and so must its normalized text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from closeloop.db.session import Database
from closeloop.db.types import Money, ScaledDecimal, UTCDateTime
from closeloop.governance.formulas import (
    FormulaError,
    FormulaSchema,
    FormulaType,
    Relation,
    compile_formula,
    evaluate_reference,
    field_of_column,
)
from tests.conftest import Backend

TODAY = date(2026, 3, 15)

metadata = MetaData()
RECORDS = Table(
    "formula_probe_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("count_n", Integer),
    Column("price", Money),
    Column("rate", ScaledDecimal(3)),
    Column("label", String(40)),
    Column("day", Date),
    Column("moment", UTCDateTime()),
    Column("flag", Boolean),
    prefixes=["TEMPORARY"],
)
ITEMS = Table(
    "formula_probe_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_id", Integer, nullable=False),
    Column("amount", Money),
    Column("quantity", Integer),
    Column("kind", String(20)),
    Column("at", UTCDateTime()),
    Column("due", Date),
    Column("done", Boolean),
    prefixes=["TEMPORARY"],
)


def _schema() -> FormulaSchema:
    items = FormulaSchema(
        "probe_item",
        {
            name: field_of_column(name, ITEMS.c[name], noun="probe_item")
            for name in ("amount", "quantity", "kind", "at", "due", "done")
        },
    )
    return FormulaSchema(
        "probe",
        {
            name: field_of_column(name, RECORDS.c[name], noun="probe")
            for name in ("count_n", "price", "rate", "label", "day", "moment", "flag")
        },
        {
            "items": Relation("items", items, lambda: ITEMS.c.record_id == RECORDS.c.id, age_field="at"),
            # the same items, aged by a date instead of a date-time
            "dues": Relation("dues", items, lambda: ITEMS.c.record_id == RECORDS.c.id, age_field="due"),
        },
    )


SCHEMA = _schema()


def _at(day: str, time: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}:00+00:00")


RECORD_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "count_n": 3,
        "price": Decimal("2.50"),
        "rate": Decimal("0.125"),
        "label": "apple",
        "day": date(2026, 1, 31),
        "moment": _at("2026-02-01", "23:30"),
        "flag": True,
    },
    {
        "id": 2,
        "count_n": -7,
        "price": Decimal("-2.50"),
        "rate": Decimal("-1.005"),
        "label": "Banana",
        "day": date(2024, 2, 29),
        "moment": _at("2024-02-29", "00:00"),
        "flag": False,
    },
    {
        "id": 3,
        "count_n": 0,
        "price": Decimal("0.00"),
        "rate": Decimal("0.000"),
        "label": "",
        "day": date(2026, 3, 15),
        "moment": _at("2026-03-14", "23:59"),
        "flag": None,
    },
    {
        "id": 4,
        "count_n": None,
        "price": None,
        "rate": None,
        "label": None,
        "day": None,
        "moment": None,
        "flag": None,
    },
    {
        "id": 5,
        "count_n": 1000,
        "price": Decimal("99999.99"),
        "rate": Decimal("2.675"),
        "label": "医院 B",
        "day": date(2025, 12, 31),
        "moment": _at("2026-01-01", "00:00"),
        "flag": True,
    },
    {
        "id": 6,
        "count_n": 12,
        "price": Decimal("0.05"),
        "rate": Decimal("1.500"),
        "label": "a",
        "day": date(2026, 6, 1),
        "moment": _at("2026-06-01", "08:15"),
        "flag": False,
    },
]

ITEM_ROWS: list[dict[str, Any]] = [
    # record 1: a visit exactly 30 days ago, a call today, a deleted-looking NULL row
    {
        "record_id": 1,
        "amount": Decimal("100.10"),
        "quantity": 2,
        "kind": "visit",
        "at": _at("2026-02-13", "23:59"),
        "due": date(2026, 2, 1),
        "done": True,
    },
    {
        "record_id": 1,
        "amount": Decimal("0.20"),
        "quantity": 1,
        "kind": "call",
        "at": _at("2026-03-15", "00:01"),
        "due": date(2026, 3, 20),
        "done": False,
    },
    {"record_id": 1, "amount": None, "quantity": None, "kind": None, "at": None, "due": None, "done": None},
    # record 2: negatives and an old item
    {
        "record_id": 2,
        "amount": Decimal("-5.55"),
        "quantity": -3,
        "kind": "Visit",
        "at": _at("2025-03-15"),
        "due": date(2025, 1, 1),
        "done": True,
    },
    {
        "record_id": 2,
        "amount": Decimal("5.55"),
        "quantity": 3,
        "kind": "visit",
        "at": _at("2026-03-16", "01:00"),
        "due": None,
        "done": None,
    },
    # record 3: one item; records 4 and 6: none
    {
        "record_id": 3,
        "amount": Decimal("0.01"),
        "quantity": 0,
        "kind": "email",
        "at": _at("2026-02-14", "00:00"),
        "due": date(2026, 2, 14),
        "done": False,
    },
    # record 5: three items summing to thirds when averaged
    {
        "record_id": 5,
        "amount": Decimal("10.00"),
        "quantity": 1,
        "kind": "meeting",
        "at": _at("2026-03-01"),
        "due": date(2026, 3, 1),
        "done": True,
    },
    {
        "record_id": 5,
        "amount": Decimal("10.00"),
        "quantity": 1,
        "kind": "visit",
        "at": _at("2026-03-02"),
        "due": date(2026, 3, 2),
        "done": True,
    },
    {
        "record_id": 5,
        "amount": Decimal("10.01"),
        "quantity": 2,
        "kind": "中文",
        "at": _at("2026-03-03"),
        "due": date(2026, 3, 3),
        "done": False,
    },
]


@dataclass
class Probe:
    session: Session
    rows: list[dict[str, Any]]
    related: dict[int, dict[str, list[dict[str, Any]]]]

    def database_values(self, text: str) -> list[Any]:
        compiled = compile_formula(text, SCHEMA, clock=lambda: TODAY)
        statement = select(RECORDS.c.id, compiled.expression).order_by(RECORDS.c.id)
        return [row[1] for row in self.session.execute(statement)]

    def reference_values(self, text: str) -> list[Any]:
        compiled = compile_formula(text, SCHEMA, clock=lambda: TODAY)
        return [
            evaluate_reference(compiled.plan, row, today=TODAY, related=self.related[row["id"]]) for row in self.rows
        ]


@pytest.fixture
def probe(db: Database) -> Iterator[Probe]:
    """The probe tables, filled, in the test's transaction (temporary tables vanish with it)."""
    session = db.open(None, write=True, system=True)
    try:
        connection = session.connection()
        metadata.create_all(connection)
        session.execute(insert(RECORDS), RECORD_ROWS)
        session.execute(insert(ITEMS), ITEM_ROWS)
        # what the database gives back, so the reference reads exactly the stored values
        rows = [dict(row._mapping) for row in session.execute(select(RECORDS).order_by(RECORDS.c.id))]
        items = [dict(row._mapping) for row in session.execute(select(ITEMS).order_by(ITEMS.c.id))]
        related = {}
        for row in rows:
            own = [item for item in items if item["record_id"] == row["id"]]
            related[row["id"]] = {"items": own, "dues": own}
        yield Probe(session, rows, related)
    finally:
        session.rollback()
        session.close()


# --- hypothesis: well-typed formulas ----------------------------------------------------------------

Kind = str  # number | text | date | datetime | boolean

ROOT_FIELDS: Mapping[Kind, Sequence[str]] = {
    "number": ("count_n", "price", "rate"),
    "text": ("label",),
    "date": ("day",),
    "datetime": ("moment",),
    "boolean": ("flag",),
}
ITEM_FIELDS: Mapping[Kind, Sequence[str]] = {
    "number": ("amount", "quantity", "days_ago"),
    "text": ("kind",),
    "date": ("due",),
    "datetime": ("at",),
    "boolean": ("done",),
}
NUMBERS = ("0", "1", "2", "0.5", "2.5", "0.125", "3", "10", "100", "0.1", "1.005", "999.99", "7e2")
TEXTS = ('"apple"', '"Banana"', '"a"', '"B"', '""', '"visit"', '"医院 B"', '"中"', '"é"', '"say \\"hi\\""')
DATES = ('DATE("2026-03-15")', 'DATE("2024-02-29")', 'DATE("2026-02-13")', "TODAY()")


def _leaf(kind: Kind, item: bool) -> st.SearchStrategy[str]:
    fields = (ITEM_FIELDS if item else ROOT_FIELDS)[kind]
    constants = {
        "number": st.one_of(st.sampled_from(NUMBERS), st.integers(0, 1000).map(str)),
        "text": st.sampled_from(TEXTS),
        "date": st.sampled_from(DATES),
        "datetime": st.sampled_from(fields),  # the language has no date-time constants
        "boolean": st.sampled_from(("TRUE", "FALSE")),
    }[kind]
    # fields most often, constants next, a NULL now and then
    return st.one_of(st.sampled_from(fields), st.sampled_from(fields), constants, constants, st.just("NULL"))


@cache
def formula(kind: Kind, depth: int = 3, *, item: bool = False) -> st.SearchStrategy[str]:
    """A well-typed formula of ``kind``; ``item`` for an aggregate's WHERE (the item's fields)."""
    leaf = _leaf(kind, item)
    if depth == 0:
        return leaf

    def sub(k: Kind) -> st.SearchStrategy[str]:
        return formula(k, depth - 1, item=item)

    ordered = st.sampled_from(("number", "text", "date", "datetime"))
    branches: list[st.SearchStrategy[str]] = [
        st.tuples(sub("boolean"), sub(kind), sub(kind)).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
        st.lists(sub(kind), min_size=1, max_size=3).map(lambda xs: f"COALESCE({', '.join(xs)})"),
    ]
    if kind in {"number", "text", "date", "datetime"}:
        branches.append(
            st.tuples(st.sampled_from(("MIN", "MAX")), st.lists(sub(kind), min_size=2, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            )
        )
    if kind == "number":
        branches += [
            st.tuples(sub("number"), st.sampled_from("+-*/"), sub("number")).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            sub("number").map(lambda x: f"-{x}" if not x.startswith("-") else f"-({x})"),
            st.tuples(sub("number"), st.integers(-2, 3)).map(lambda t: f"ROUND({t[0]}, {t[1]})"),
            sub("number").map(lambda x: f"ROUND({x})"),
            sub("number").map(lambda x: f"ABS({x})"),
            st.tuples(st.one_of(sub("date"), sub("datetime")), st.one_of(sub("date"), sub("datetime"))).map(
                lambda t: f"DAYS_BETWEEN({t[0]}, {t[1]})"
            ),
            st.tuples(st.sampled_from(("YEAR", "MONTH")), st.one_of(sub("date"), sub("datetime"))).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
        ]
        if not item:
            where = st.one_of(st.just(""), formula("boolean", depth - 1, item=True).map(lambda c: f" WHERE {c}"))
            branches += [
                st.tuples(
                    st.sampled_from(("SUM", "AVG", "MIN", "MAX")), st.sampled_from(("amount", "quantity")), where
                ).map(lambda t: f"{t[0]}(items.{t[1]}{t[2]})"),
                st.tuples(st.sampled_from(("items", "items.amount", "items.kind")), where).map(
                    lambda t: f"COUNT({t[0]}{t[1]})"
                ),
            ]
    elif kind == "text":
        branches.append(st.tuples(sub("text"), sub("text")).map(lambda t: f"({t[0]} & {t[1]})"))
        if not item:
            branches.append(st.sampled_from(("MIN(items.kind)", "MAX(items.kind WHERE done)")))
    elif kind == "date":
        branches.append(sub("datetime").map(lambda x: f"DATE({x})"))
        if not item:
            branches.append(st.sampled_from(("MAX(items.due)", "MIN(items.due WHERE NOT done)")))
    elif kind == "datetime" and not item:
        branches.append(st.sampled_from(("MAX(items.at)", "MIN(items.at WHERE days_ago >= 0)")))
    elif kind == "boolean":

        def comparison(k: Kind) -> st.SearchStrategy[str]:
            operators = ("=", "!=", "<", "<=", ">", ">=", "<>", "==")
            return st.tuples(sub(k), st.sampled_from(operators), sub(k)).map(lambda t: f"({t[0]} {t[1]} {t[2]})")

        branches += [
            ordered.flatmap(comparison),
            st.tuples(sub("boolean"), st.sampled_from(("=", "!=")), sub("boolean")).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(sub("boolean"), st.sampled_from(("AND", "OR", "and", "Or")), sub("boolean")).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            sub("boolean").map(lambda x: f"(NOT {x})"),
            st.tuples(ordered.flatmap(sub), st.booleans()).map(lambda t: f"({t[0]} IS {'NOT ' if t[1] else ''}NULL)"),
            ordered.flatmap(lambda k: st.tuples(sub(k), st.booleans(), st.lists(sub(k), min_size=1, max_size=3))).map(
                lambda t: f"({t[0]} {'NOT ' if t[1] else ''}IN ({', '.join(t[2])}))"
            ),
            st.tuples(sub("text"), sub("text")).map(lambda t: f"CONTAINS({t[0]}, {t[1]})"),
        ]
    return st.one_of(leaf, *branches)


def compile_formula_type(text: str) -> FormulaType | None:
    try:
        return compile_formula(text, SCHEMA).type
    except FormulaError as error:
        if error.reason.startswith("the formula is always empty"):
            return None
        raise


any_formula = st.sampled_from(("number", "text", "date", "datetime", "boolean")).flatmap(formula)


def test_generated_formulas_give_the_reference_values_in_the_database(probe: Probe, backend: Backend) -> None:
    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(text=any_formula)
    def agrees(text: str) -> None:
        # a formula that is NULL whatever happens (IF(c, NULL, NULL)) is refused by the checker
        assume(compile_formula_type(text) is not None)
        expected = probe.reference_values(text)
        assert probe.database_values(text) == expected, text
        normalized = compile_formula(text, SCHEMA).normalized
        assert probe.database_values(normalized) == expected, normalized

    agrees()


# --- the semantics, pinned ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # arithmetic is in doubles, money exact until then; division by zero is NULL
        ("price * 2", [5.0, -5.0, 0.0, None, 199999.98, 0.1]),
        ("count_n / 2", [1.5, -3.5, 0.0, None, 500.0, 6.0]),
        ("10 / count_n", [10 / 3, -10 / 7, None, None, 0.01, 10 / 12]),
        # ROUND is half away from zero, at any number of places
        ("ROUND(price)", [3.0, -3.0, 0.0, None, 100000.0, 0.0]),
        # … of the double: -1.005 is a little above -1.005 as a double, so it rounds to -1.0
        ("ROUND(rate, 2)", [0.13, -1.0, 0.0, None, 2.68, 1.5]),
        ("ROUND(count_n, -1)", [0.0, -10.0, 0.0, None, 1000.0, 10.0]),
        # three-valued logic: FALSE AND NULL is FALSE, TRUE OR NULL is TRUE, NOT NULL is NULL
        ("flag AND count_n > 0", [True, False, False, None, True, False]),
        ("flag OR count_n > 0", [True, False, None, None, True, True]),
        ("NOT flag", [False, True, None, None, False, True]),
        ("IF(flag, 1, 2)", [1.0, 2.0, 2.0, 2.0, 1.0, 2.0]),
        # texts compare by code point: "B" < "a", and Chinese after Latin
        ('label < "b"', [True, True, True, None, False, True]),
        ('label & "!"', ["apple!", "Banana!", "!", None, "医院 B!", "a!"]),
        # a date-time's date is its UTC date; days are whole calendar days
        ("DAYS_BETWEEN(day, moment)", [1.0, 0.0, -1.0, None, 1.0, 0.0]),
        ("DATE(moment) = day", [False, True, False, None, False, True]),
        ("YEAR(day) * 100 + MONTH(day)", [202601.0, 202402.0, 202603.0, None, 202512.0, 202606.0]),
        # aggregates: SUM of nothing is 0, AVG of nothing NULL, NULL values skipped
        ("SUM(items.amount)", [100.3, 0.0, 0.01, 0.0, 30.01, 0.0]),
        ("COUNT(items)", [3.0, 2.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(items.amount)", [2.0, 2.0, 1.0, 0.0, 3.0, 0.0]),
        ("AVG(items.amount)", [50.15, 0.0, 0.01, None, float(Fraction(3001, 300)), None]),
        ('COUNT(items WHERE kind = "visit")', [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]),
        # days_ago counts whole UTC days to today (2026-03-15); the future is negative
        ("COUNT(items WHERE days_ago <= 30)", [2.0, 1.0, 1.0, 0.0, 3.0, 0.0]),
        ("MAX(items.quantity WHERE days_ago >= 30)", [2.0, -3.0, None, None, None, None]),
        # a days_ago bound becomes a bound on the date (whole days), from either side, at any bound
        ("COUNT(items WHERE days_ago < 30.5)", [2.0, 1.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(items WHERE 30 >= days_ago)", [2.0, 1.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(items WHERE days_ago > 29.9)", [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
        ("COUNT(items WHERE -1 < days_ago)", [2.0, 1.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(items WHERE days_ago <= 1e9)", [2.0, 2.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(dues WHERE days_ago <= 30)", [1.0, 0.0, 1.0, 0.0, 3.0, 0.0]),
        ("COUNT(dues WHERE days_ago > 41.5)", [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
        ("COUNT(dues WHERE NOT days_ago >= -5)", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        (
            "MIN(items.at)",
            [_at("2026-02-13", "23:59"), _at("2025-03-15"), _at("2026-02-14", "00:00"), None, _at("2026-03-01"), None],
        ),
        ("MIN(items.kind)", ["call", "Visit", "email", None, "meeting", None]),
        ("MAX(price, count_n, NULL)", [3.0, -2.5, 0.0, None, 99999.99, 12.0]),
    ],
)
def test_the_semantics_are_pinned(probe: Probe, text: str, expected: list[Any]) -> None:
    assert probe.database_values(text) == expected
    assert probe.reference_values(text) == expected


def test_a_null_literal_takes_the_type_of_its_place(probe: Probe) -> None:
    assert probe.database_values("COALESCE(NULL, day)") == [row["day"] for row in RECORD_ROWS]
    assert probe.database_values("NULL = NULL") == [None] * len(RECORD_ROWS)
    assert probe.database_values("IF(TRUE, NULL, moment)") == [None] * len(RECORD_ROWS)
