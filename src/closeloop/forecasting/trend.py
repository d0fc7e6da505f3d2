"""The run-rate's trend (issue #5 item 2, tenth session): how much more (or less) business not yet in
the pipeline the coming months bring than the last year's average.

The run-rate — deals not open today that will be won within the horizon — is the last year's rate of
won deals times the share of sales cycles short enough. On a growing business that average lags:
the demo's deals opened per month went from 49 to 176 in a year, and months two to five after a
snapshot were under-forecast by 30–66 %. So the organization's **monthly bookings** (won amount per
complete month, up to ``HISTORY_MONTHS``) are fitted with statsforecast's ``AutoETS`` restricted to
non-seasonal models with a **damped** trend (``ZZN``, ``damped=True``: a trend that flattens out
rather than running on forever), and each horizon month's run-rate is scaled by that month's
forecast ÷ the last twelve months' mean (the level the run-rate was computed at).

The spread: the month's own noise is already drawn by the simulation (Poisson arrivals, the rate's
Gamma scatter from month to month); what the trend adds is the uncertainty of where the business's
level will be, which grows with the months ahead. ``AutoETS``'s intervals do not carry it (they
treat the fitted level and trend as known: on the demo its 80 % interval has the same width six
months out as one), so :class:`Growth` carries the standard error of a straight line's fitted value
at each horizon month, fitted to the same months (s·√(1/n + (x − x̄)²/Sxx)), relative to the last
twelve months' mean — drawn once per simulation for all months (a trend errs the same way in every
month).

Guards, so that a flat, shrinking, young or erratic business does not blow the run-rate up: fewer
than ``MIN_MONTHS`` months with bookings (or nothing booked in the last year) → no trend (factor 1);
factors are kept within [``LOWEST``, ``HIGHEST``]; a fit that fails → no trend.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: complete months of bookings the trend is fitted on (at most)
HISTORY_MONTHS = 24
#: fewer months (from the first with a booking) and the run-rate keeps its plain average
MIN_MONTHS = 8
#: the run-rate is never scaled below or above these factors of the last year's average
LOWEST, HIGHEST = 0.25, 4.0


@dataclass(frozen=True)
class Growth:
    """Per horizon month (the first: the snapshot's own month): the run-rate's factor against the last
    twelve months' average, and the standard deviation of that factor from the trend's uncertainty."""

    factor: FloatArray
    spread: FloatArray

    @classmethod
    def none(cls, steps: int) -> Growth:
        return cls(factor=np.ones(steps), spread=np.zeros(steps))


def growth(monthly: Sequence[float], steps: int) -> Growth:
    """The trend of ``monthly`` bookings (complete months, oldest first, ending with the month before
    the snapshot's) over the ``steps`` months from the snapshot's month on."""
    values = np.asarray(monthly, dtype=np.float64)[-HISTORY_MONTHS:]
    booked = np.flatnonzero(values > 0)
    if not len(booked) or steps <= 0:
        return Growth.none(max(steps, 0))
    values = values[booked[0] :]
    level = float(values[-12:].mean())
    if len(values) < MIN_MONTHS or level <= 0:
        return Growth.none(steps)
    from statsforecast.models import AutoETS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = AutoETS(season_length=1, model="ZZN", damped=True).fit(values)
            predicted = fitted.predict(h=steps, level=[80])
    except Exception:
        return Growth.none(steps)
    mean = np.asarray(predicted["mean"], dtype=np.float64)
    if not np.all(np.isfinite(mean)):
        return Growth.none(steps)
    factor = np.clip(mean / level, LOWEST, HIGHEST)
    return Growth(factor=factor, spread=np.minimum(line_error(values, steps) / level, HIGHEST))


def line_error(values: FloatArray, steps: int) -> FloatArray:
    """The standard error of a least-squares straight line's value at each of the ``steps`` months
    after ``values`` (the uncertainty of the level and slope, not the months' own noise)."""
    count = len(values)
    positions = np.arange(count, dtype=np.float64)
    slope, intercept = np.polyfit(positions, values, 1)
    residual = values - (slope * positions + intercept)
    scale = float(np.sqrt((residual**2).sum() / max(count - 2, 1)))
    spread_x = float(((positions - positions.mean()) ** 2).sum())
    ahead = np.arange(count, count + steps, dtype=np.float64)
    return np.asarray(scale * np.sqrt(1.0 / count + (ahead - positions.mean()) ** 2 / spread_x), dtype=np.float64)
