"""Demand-forecast accuracy on the Walmart weekly panel (45 stores × 143 weeks, five signals).

    nice -n 10 .venv/bin/python bench/forecast_walmart.py [--horizon 13] [--windows 3] [--jobs 2]

Rolling-origin backtest (the last ``windows × horizon`` weeks, origins ``horizon`` weeks apart) of
seasonal naive (last year's same week), AutoETS, MSTL-ETS, LightGBM with the holiday flag,
temperature, fuel price, CPI and unemployment as signals, and the ensemble; prints a markdown table
with each model's WAPE as a ratio to seasonal naive's, measured in the same process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.forecast_common import WALMART_SIGNALS, score_table, walmart_weekly  # noqa: E402
from closeloop.forecasting.data import frame_to_panel  # noqa: E402
from closeloop.forecasting.demand import BASELINE, ModelOptions, backtest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--horizon", type=int, default=13)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--arima", action="store_true", help="also backtest AutoARIMA")
    args = parser.parse_args()
    panel = frame_to_panel(walmart_weekly(), exog=WALMART_SIGNALS, freq="W")
    started = time.perf_counter()
    result = backtest(
        panel, horizon=args.horizon, windows=args.windows, options=ModelOptions(arima=args.arima, n_jobs=args.jobs)
    )
    seconds = time.perf_counter() - started
    print(
        score_table(
            f"Walmart weekly: {args.windows} origins × {args.horizon} weeks, {panel.series_count} stores", result
        )
    )
    baseline = result.score(BASELINE).wape or 0.0
    chosen = result.score(result.chosen).wape or 0.0
    print()
    print(
        f"chosen {result.chosen}: WAPE {chosen:.2%} vs seasonal naive {baseline:.2%} "
        f"({1 - chosen / baseline:.1%} lower); backtest took {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
