"""Accuracy measures for forecasts: WAPE, MASE and the "1 − WAPE" accuracy sales teams quote.

They are a few lines each and are written out here (rather than taken from a library) so that the
exact definitions are visible next to the numbers the CLI and the benchmarks print:

* WAPE = Σ|actual − forecast| / Σ|actual| over every series, origin and step (a volume-weighted
  error; ``None`` when the actuals sum to zero).
* MASE = MAE of the forecast / in-sample MAE of the seasonal naive forecast (lag = season length,
  or 1 when the history is shorter than two seasons), per series and origin, then averaged over the
  series whose scale is not zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def wape(actual: Sequence[float] | FloatArray, forecast: Sequence[float] | FloatArray) -> float | None:
    """Weighted absolute percentage error; ``None`` when there is nothing to weigh by."""
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast differ in length ({a.size} vs {f.size})")
    denominator = float(np.abs(a).sum())
    if denominator == 0.0:
        return None
    return float(np.abs(a - f).sum() / denominator)


def accuracy(wape_value: float | None) -> float | None:
    """1 − WAPE, the "forecast accuracy" figure; may be negative for a very poor forecast."""
    return None if wape_value is None else 1.0 - wape_value


def mase_scale(history: Sequence[float] | FloatArray, season_length: int) -> float | None:
    """In-sample MAE of the seasonal naive forecast on ``history`` (lag 1 if too short for a season)."""
    h = np.asarray(history, dtype=np.float64)
    lag = season_length if season_length > 1 and h.size > season_length else 1
    if h.size <= lag:
        return None
    scale = float(np.abs(h[lag:] - h[:-lag]).mean())
    return scale if scale > 0.0 else None


def mase(
    actual: Sequence[float] | FloatArray,
    forecast: Sequence[float] | FloatArray,
    history: Sequence[float] | FloatArray,
    season_length: int,
) -> float | None:
    """Mean absolute scaled error of one forecast path against its own history's seasonal naive error."""
    scale = mase_scale(history, season_length)
    if scale is None:
        return None
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    return float(np.abs(a - f).mean() / scale)
