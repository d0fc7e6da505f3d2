"""Parsing cells as people type them: dates, money, booleans and picklist labels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeloop.crm.enums import ActivityKind, DecisionRole, LeadSource, Stage
from closeloop.integrations.importing.labels import label_index
from closeloop.integrations.importing.values import (
    ValueProblem,
    date_to_excel_serial,
    parse_bool,
    parse_choice,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_int,
    parse_money,
    parse_text,
)

DATES = st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31))


@settings(deadline=None)  # the machine is shared; parsing speed is not what these check
@given(DATES)
def test_every_written_form_of_a_date_reads_back_as_that_date(day: date) -> None:
    forms = [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month}.{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.year}{day.month:02d}{day.day:02d}",
        f"{day.isoformat()} 00:00:00",
        date_to_excel_serial(day),
        str(date_to_excel_serial(day)),
        datetime(day.year, day.month, day.day),  # noqa: DTZ001 - an XLSX cell holds a naive date-time
    ]
    assert [parse_date(form) for form in forms] == [day] * len(forms)


@settings(deadline=None)
@given(DATES, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_a_date_time_reads_back_as_that_moment_in_utc(day: date, hour: int, minute: int, second: int) -> None:
    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    forms = [
        f"{day.year}/{day.month}/{day.day} {hour}:{minute:02d}:{second:02d}",
        f"{day.year}年{day.month}月{day.day}日 {hour:02d}:{minute:02d}:{second:02d}",
        moment.isoformat(),
        moment.replace(tzinfo=None).isoformat(),
    ]
    assert [parse_datetime(form) for form in forms] == [moment] * len(forms)


@settings(deadline=None)
@given(st.decimals(min_value=0, max_value=Decimal("99999999999999.99"), places=2))
def test_money_written_with_separators_and_currency_marks_reads_back_exactly(amount: Decimal) -> None:
    grouped = f"{amount:,.2f}"
    forms = [str(amount), grouped, f"¥{grouped}", f"￥ {grouped}", f"${grouped}", f"{grouped}元", f"RMB {grouped}"]
    assert [parse_money(form) for form in forms] == [amount] * len(forms)


@given(
    st.one_of(
        st.text(alphabet="0123456789eE+-.,万亿¥ ", max_size=60),
        st.integers(min_value=-(10**60), max_value=10**60).map(str),
        st.builds(lambda m, e: f"{m}e{e}", st.integers(-99, 99), st.integers(-500, 500)),
    )
)
def test_no_number_breaks_a_parser_only_its_cell(text: str) -> None:
    """Any cell either reads as a value its column can hold or is refused with a reason — never an
    error that would fail the whole import (``1e400`` once overflowed the rounding to cents)."""
    for parse in (parse_money, parse_decimal, parse_int):
        try:
            value = parse(text)
        except ValueProblem:
            continue
        if value is not None:
            assert abs(Decimal(value)) < 10**18
            if parse is parse_money:
                assert abs(Decimal(value)) < 10**14
                assert Decimal(value) == Decimal(value).quantize(Decimal("0.01"))


def test_money_knows_chinese_units_negatives_and_refuses_junk() -> None:
    assert parse_money("1.5万") == Decimal("15000.00")
    assert parse_money("2亿") == Decimal("200000000.00")
    assert parse_money("(1,234.50)") == Decimal("-1234.50")
    assert parse_money("-¥1,000") == Decimal("-1000.00")
    assert parse_money("") is None
    assert parse_money("N/A") is None
    with pytest.raises(ValueProblem, match="has more than two decimal places"):
        parse_money("1.005")
    with pytest.raises(ValueProblem, match=r"is not a number \(write it like 1234.50 or 1,234.50\)"):
        parse_money("12,34")


def test_dates_that_are_not_dates_say_why() -> None:
    with pytest.raises(ValueProblem, match=r"is not a real date \(2024-02-30\)"):
        parse_date("2024/2/30")
    with pytest.raises(ValueProblem, match="is ambiguous: day and month could be either way round; write it as 2024"):
        parse_date("03/05/2024")
    with pytest.raises(ValueProblem, match="is a date with a time of day; this field takes a date only"):
        parse_date("2024-03-05 14:30")
    with pytest.raises(ValueProblem, match=r"is not a date \(use YYYY-MM-DD, 2024/3/5 or 2024年3月5日\)"):
        parse_date("next Tuesday")
    assert parse_date("25/12/2024") == date(2024, 12, 25)
    assert parse_date("12/25/2024") == date(2024, 12, 25)


def test_integers_and_text() -> None:
    assert parse_int("1,200") == 1200
    assert parse_int(1200.0) == 1200
    assert parse_int("１２００") == 1200  # full-width digits
    with pytest.raises(ValueProblem, match="is not a whole number"):
        parse_int("12.5")
    assert parse_text(13800138000.0) == "13800138000"
    assert parse_text("  华为  ") == "华为"
    assert parse_text("   ") is None


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("是", True), ("否", False), ("Yes", True), ("n", False), ("TRUE", True), ("0", False), (1, True), ("", None)],
)
def test_booleans_in_chinese_and_english(cell: object, expected: bool | None) -> None:
    assert parse_bool(cell) is expected


def test_a_word_that_is_not_yes_or_no_is_refused() -> None:
    with pytest.raises(ValueProblem, match=r"is not yes or no \(是/否, yes/no, true/false, 1/0\)"):
        parse_bool("maybe")


@pytest.mark.parametrize(
    ("enum", "cell", "code"),
    [
        (Stage, "赢单", "won"),
        (Stage, "Closed Won", "won"),
        (Stage, "输单", "lost"),
        (Stage, "需求确认", "qualification"),
        (Stage, "Engaging", "qualification"),
        (Stage, "NEGOTIATION", "negotiation"),
        (ActivityKind, "电话", "call"),
        (ActivityKind, "微信", "chat"),
        (ActivityKind, "拜访", "visit"),
        (LeadSource, "展会", "trade_show"),
        (LeadSource, "trade show", "trade_show"),
        (DecisionRole, "决策者", "decision_maker"),
        (DecisionRole, "decision-maker", "decision_maker"),
    ],
)
def test_picklist_labels_in_chinese_and_english(enum: type[Stage], cell: str, code: str) -> None:
    assert parse_choice(cell, label_index(enum), choices=tuple(enum)) == code


def test_an_unknown_label_lists_the_codes() -> None:
    with pytest.raises(
        ValueProblem, match="is not one of: prospecting, qualification, proposal, negotiation, won, lost"
    ):
        parse_choice("maybe later", label_index(Stage), choices=tuple(m.value for m in Stage))
