"""Amounts written into titles and generated text."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from closeloop.core.money import written


def test_yuan_and_other_currencies() -> None:
    assert written(Decimal("323419.2"), "CNY") == "¥323,419.20"
    assert written("860", None) == "¥860.00"
    assert written(1200, "usd") == "USD 1,200.00"
    assert written("n/a", "CNY") == "n/a"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_the_written_amount_reads_back_as_the_amount(amount: Decimal) -> None:
    assert Decimal(written(amount, "CNY").removeprefix("¥").replace(",", "")) == amount
