"""The share of slippage draws landing a deal in a period: the bisection count agrees with the
definition (among the draws that leave the deal open on the as-of day, each moved and tested
against the period)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.forecasting.simulation import Period, period_share

AS_OF = date(2026, 11, 26)


def by_definition(expected_close: date, slips: list[int], period: Period) -> float:
    still_open = [slip for slip in slips or [0] if expected_close + timedelta(days=slip) >= AS_OF]
    if not still_open:
        return 0.0
    inside = sum(1 for slip in still_open if period.start <= expected_close + timedelta(days=slip) < period.end)
    return inside / len(still_open)


@given(
    close=st.integers(-400, 300),
    slips=st.lists(st.integers(-60, 240), max_size=40),
    start=st.integers(-60, 120),
    length=st.sampled_from([28, 30, 31, 90, 92]),
)
def test_the_share_is_the_share_of_draws_in_the_period(close: int, slips: list[int], start: int, length: int) -> None:
    period = Period("month", "p", AS_OF + timedelta(days=start), AS_OF + timedelta(days=start + length))
    expected_close = AS_OF + timedelta(days=close)
    assert period_share(expected_close, slips, AS_OF, period) == pytest.approx(
        by_definition(expected_close, slips, period)
    )
