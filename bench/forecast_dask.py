"""The scale-out path, exercised once: statsforecast on a local Dask cluster gives the same
forecasts as in one process (Walmart weekly, AutoETS and seasonal naive, 13 weeks).

    nice -n 10 .venv/bin/python bench/forecast_dask.py [--workers 2]

Needs the optional ``scale`` extra (``pip install -e '.[scale]'``: dask[distributed,dataframe]).
statsforecast hands a Dask DataFrame to Fugue, which spreads the series over the cluster's workers;
on a bigger panel the same call runs on a multi-machine cluster by pointing the client at it.
Prints both wall times (the local cluster's ratio to the single process) and the largest
difference between the two sets of forecasts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.forecast_common import walmart_weekly  # noqa: E402
from closeloop.forecasting.data import frame_to_panel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    panel = frame_to_panel(walmart_weekly(), freq="W")
    frame = panel.history[["unique_id", "ds", "y"]]
    models = [SeasonalNaive(season_length=52), AutoETS(season_length=1)]
    started = time.perf_counter()
    local = StatsForecast(models=models, freq=panel.freq, n_jobs=1).forecast(df=frame, h=13)
    single = time.perf_counter() - started
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        started = time.perf_counter()
        spread = StatsForecast(models=models, freq=panel.freq).forecast(
            df=dd.from_pandas(frame, npartitions=args.workers * 2), h=13
        )
        distributed = spread.compute() if hasattr(spread, "compute") else spread
        seconds = time.perf_counter() - started
    distributed["ds"] = distributed["ds"].astype("datetime64[ns]")
    distributed["unique_id"] = distributed["unique_id"].astype(str)
    merged = local.merge(distributed, on=["unique_id", "ds"], suffixes=("", "_dask"))
    difference = max(float((merged[m] - merged[f"{m}_dask"]).abs().max()) for m in ("SeasonalNaive", "AutoETS"))
    print(
        f"{panel.series_count} series × 13 weeks: one process {single:.1f} s; local Dask cluster of "
        f"{args.workers} workers {seconds:.1f} s ({seconds / single:.1f} × the single process, start-up "
        f"and shuffling included); {len(merged)} forecasts compared, largest difference {difference:.6g}"
    )


if __name__ == "__main__":
    main()
