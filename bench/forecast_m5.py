"""Demand-forecast accuracy on the M5 slice: 823 FOODS_3 items of store TX_3, daily units in weeks.

    nice -n 10 .venv/bin/python bench/forecast_m5.py [--horizon 4] [--windows 6] [--jobs 2]

The daily train file and the M5 validation month are joined and summed to complete Walmart weeks
(Saturday–Friday); the signals are the week's number of event days and SNAP days. Rolling-origin
backtest of seasonal naive, AutoETS, MSTL-ETS, Croston SBA (the series are intermittent),
LightGBM (Tweedie loss) with the signals, and the ensemble; prints a markdown table with each
model's WAPE as a ratio to seasonal naive's and to AutoETS's, measured in the same process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.forecast_common import M5_SIGNALS, m5_weekly, score_table  # noqa: E402
from closeloop.forecasting.data import frame_to_panel  # noqa: E402
from closeloop.forecasting.demand import BASELINE, ModelOptions, backtest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--arima", action="store_true", help="also backtest AutoARIMA")
    args = parser.parse_args()
    panel = frame_to_panel(m5_weekly(), exog=M5_SIGNALS, freq="W")
    started = time.perf_counter()
    result = backtest(
        panel, horizon=args.horizon, windows=args.windows, options=ModelOptions(arima=args.arima, n_jobs=args.jobs)
    )
    seconds = time.perf_counter() - started
    print(
        score_table(
            f"M5 FOODS_3 × TX_3 weekly: {args.windows} origins × {args.horizon} weeks, {panel.series_count} items",
            result,
        )
    )
    baseline = result.score(BASELINE).wape or 0.0
    chosen = result.score(result.chosen).wape or 0.0
    ets = result.score("AutoETS").wape or 0.0
    print()
    print(
        f"chosen {result.chosen}: WAPE {chosen:.2%} vs seasonal naive {baseline:.2%} "
        f"({1 - chosen / baseline:.1%} lower), vs AutoETS {ets:.2%} ({1 - chosen / ets:.1%} lower); "
        f"zero weeks {panel.zero_share:.0%}; backtest took {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
