"""The accuracy measures, checked against sums worked by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.forecasting.metrics import accuracy, mase, mase_scale, wape


def test_wape_by_hand() -> None:
    # |10-8| + |20-25| + |30-30| = 7 over 60
    assert wape([10, 20, 30], [8, 25, 30]) == pytest.approx(7 / 60)
    assert accuracy(wape([10, 20, 30], [8, 25, 30])) == pytest.approx(53 / 60)


def test_wape_without_volume_is_undefined() -> None:
    assert wape([0, 0], [1, 2]) is None
    assert accuracy(None) is None


def test_wape_rejects_paths_of_different_length() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        wape([1, 2], [1])


def test_mase_by_hand() -> None:
    # season 2: history 1,2,3,4,5,6 → seasonal differences 2,2,2,2 → scale 2
    history = [1, 2, 3, 4, 5, 6]
    assert mase_scale(history, 2) == pytest.approx(2.0)
    # forecast errors 1 and 3 → MAE 2 → MASE 1
    assert mase([7, 8], [6, 11], history, 2) == pytest.approx(1.0)


def test_mase_falls_back_to_lag_one_on_a_short_history() -> None:
    # 3 values cannot hold a season of 52: naive differences 2, 4 → scale 3
    assert mase_scale([1, 3, 7], 52) == pytest.approx(3.0)


def test_mase_of_a_flat_history_is_undefined() -> None:
    assert mase([5], [4], [5, 5, 5, 5], 1) is None


@given(st.lists(st.floats(min_value=0.5, max_value=1e6), min_size=1, max_size=30))
def test_a_perfect_forecast_scores_zero(values: list[float]) -> None:
    assert wape(values, values) == 0.0
    score = mase(values, values, [*values, 0.0, 1.0], 1)
    assert score is None or math.isclose(score, 0.0)
