"""Demand backtests and forecasts on small series whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeloop.core.errors import ValidationFailed
from closeloop.forecasting.data import frame_to_panel
from closeloop.forecasting.demand import BASELINE, ENSEMBLE, ModelOptions, backtest, forecast


def seasonal_frame(series: int = 3, years: int = 5, noise: float = 0.0, seed: int = 1) -> pd.DataFrame:
    """Monthly series: a fixed 12-month shape times a level per series, plus optional noise."""
    rng = np.random.default_rng(seed)
    shape = np.array([5, 6, 8, 10, 12, 15, 18, 16, 12, 9, 7, 6], dtype=float)
    dates = pd.date_range("2019-01-01", periods=12 * years, freq="MS")
    rows = []
    for index in range(series):
        level = 10.0 * (index + 1)
        for step, day in enumerate(dates):
            value = level * shape[step % 12] * (1 + noise * rng.standard_normal())
            rows.append((f"s{index}", day.strftime("%Y-%m-%d"), f"{value:.4f}"))
    return pd.DataFrame(rows, columns=["series_id", "date", "value"])


def test_a_pure_seasonal_series_is_forecast_exactly() -> None:
    panel = frame_to_panel(seasonal_frame(), freq="M")
    assert panel.freq == "MS"
    assert panel.season_length == 12
    result = backtest(panel, horizon=6, windows=2, options=ModelOptions(lightgbm=False))
    # the seasonal naive repeats last year, which is this year: no error at all
    assert result.score(BASELINE).wape == pytest.approx(0.0, abs=1e-9)
    ets = result.score("AutoETS").wape
    assert ets is not None
    assert ets < 0.05
    final = forecast(panel, horizon=12, model=BASELINE, train_length=result.train_length)
    s1 = final[final["unique_id"] == "s1"]
    assert list(s1["ds"].dt.month) == list(range(1, 13))
    assert s1["forecast"].to_numpy() == pytest.approx(20.0 * np.array([5, 6, 8, 10, 12, 15, 18, 16, 12, 9, 7, 6]))


def test_the_signal_lets_lightgbm_beat_the_seasonal_naive() -> None:
    """Weekly series whose spikes follow a promotion flag, not the calendar: only the model that
    reads the flag can foresee them."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2021-01-01", periods=150, freq="W-FRI")
    rows = []
    for series in range(4):
        promo = rng.random(len(dates)) < 0.2
        base = 100.0 + 20 * series
        for day, flag in zip(dates, promo, strict=True):
            value = base * (2.0 if flag else 1.0) + rng.normal(0, 2)
            rows.append((f"p{series}", day.strftime("%Y-%m-%d"), f"{value:.3f}", str(int(flag))))
    frame = pd.DataFrame(rows, columns=["series_id", "date", "value", "promo"])
    panel = frame_to_panel(frame, exog=("promo",), freq="W")
    result = backtest(panel, horizon=8, windows=2, options=ModelOptions(lgbm_estimators=150))
    assert {BASELINE, "AutoETS", "LightGBM", ENSEMBLE} <= set(result.models)
    lightgbm, naive = result.score("LightGBM").wape, result.score(BASELINE).wape
    assert lightgbm is not None
    assert naive is not None
    assert lightgbm < 0.5 * naive
    assert result.chosen in {"LightGBM", ENSEMBLE}


def test_intermittent_series_bring_in_a_croston_type_model() -> None:
    rng = np.random.default_rng(5)
    dates = pd.date_range("2022-01-03", periods=60, freq="W-MON")
    rows = [
        (f"i{series}", day.strftime("%Y-%m-%d"), str(int(rng.poisson(0.6)))) for series in range(3) for day in dates
    ]
    panel = frame_to_panel(pd.DataFrame(rows, columns=["series_id", "date", "value"]))
    assert panel.zero_share > 0.3
    result = backtest(panel, horizon=4, windows=2, options=ModelOptions(lgbm_estimators=50))
    assert "CrostonSBA" in result.models
    assert (result.predictions[result.models] >= 0).all().all()


def test_a_backtest_longer_than_the_history_is_refused() -> None:
    panel = frame_to_panel(seasonal_frame(series=1, years=2), freq="M")
    with pytest.raises(ValidationFailed, match="shortest series has 24 periods"):
        backtest(panel, horizon=12, windows=2)
