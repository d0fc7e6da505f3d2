"""Locale formatting of the workspace: money, compact figures, percentages, dates, and the language
negotiation (the user's setting, then the browser, then Chinese)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from closeloop.web import i18n


def test_money_and_figures_read_as_each_language_writes_them() -> None:
    assert i18n.format_money(Decimal("1234567"), "CNY", "zh_CN") == "¥1,234,567.00"
    assert i18n.format_money(Decimal("1234567"), "CNY", "en") == "¥1,234,567.00"
    assert i18n.format_money(Decimal("12.5"), "USD", "en") == "$12.50"
    assert i18n.format_compact(1234567, "zh_CN") == "123.46万"
    assert i18n.format_compact(1234567, "en", currency="CNY") == "¥1.23M"
    assert i18n.format_percent(0.253, "zh_CN") == "25.3%"
    assert i18n.format_money(None, "CNY", "en") == "—"


def test_a_time_is_shown_on_its_day_in_china() -> None:
    late_utc = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # 04:30 on the 26th in Shanghai
    assert i18n.format_date(late_utc, "zh_CN") == "2026年11月26日"
    assert i18n.format_date("2026-11-26", "en") == "Nov 26, 2026"


def test_the_setting_wins_then_the_browser_then_chinese() -> None:
    assert i18n.negotiate("en", "zh-CN,zh;q=0.9") == "en"
    assert i18n.negotiate(None, "en-US,en;q=0.9") == "en"
    assert i18n.negotiate(None, "fr-FR") == "zh_CN"
    assert i18n.negotiate("xx", None) == "zh_CN"


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False))
def test_money_keeps_every_digit_of_the_amount(amount: Decimal) -> None:
    for locale in i18n.SUPPORTED:
        shown = i18n.format_money(amount, "CNY", locale)
        digits = "".join(ch for ch in shown if ch.isdigit())
        assert int(digits) == abs(int(amount * 100))
        assert shown.startswith("-") == (amount < 0)


def test_compact_figures_are_grouped_and_keep_two_decimals() -> None:
    assert i18n.format_compact(Decimal("19332500"), "zh_CN", currency="CNY") == "¥1,933.25万"
    assert i18n.format_compact(Decimal("19330000"), "zh_CN") == "1,933.00万"  # the trailing zero stays
    assert i18n.format_compact(Decimal("123456700"), "zh_CN") == "12,345.67万"  # 万 also above 1亿
    assert i18n.format_compact(Decimal("9800"), "zh_CN", currency="CNY") == "¥9,800.00"
    assert i18n.format_compact(-1234567, "zh_CN") == "-123.46万"
    assert i18n.format_compact(Decimal("1234567890123"), "en", currency="CNY") == "¥1,234.57B"
    assert i18n.format_compact(0, "en", currency="CNY") == "¥0.00"
