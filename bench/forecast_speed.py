"""Demand-forecast speed: fit and forecast 13 weeks for 30,000 series × 156 weeks.

    nice -n 10 .venv/bin/python bench/forecast_speed.py [--series 30000] [--weeks 156] [--jobs 2]

The series are SYNTHETIC (no real panel of that size is at hand): a yearly shape, a level per series
spread over three orders of magnitude, a trend, a holiday bump that a signal column announces, and
noise. Each step fits on the whole panel and forecasts 13 weeks; wall times are printed with their
ratio to seasonal naive's (the cheapest model), measured in the same process:

* seasonal naive; AutoETS; MSTL-ETS (statsforecast, ``--jobs`` processes);
* LightGBM with the signal (mlforecast, ``--jobs`` threads).

CPU seconds (this process and its worker processes) are printed too: on a machine shared with
other work they, not the wall times, tell what the fit costs. The ensemble costs the sum of its
members plus an average: for a weekly panel with a 52-week season that is MSTL-ETS and LightGBM
(``demand.ensemble_members``); ``forecast evaluate`` also fits AutoETS to score it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from closeloop.forecasting.data import Panel  # noqa: E402
from closeloop.forecasting.demand import MSTL_ETS, ModelOptions, lightgbm_forecaster  # noqa: E402

HORIZON = 13


def synthetic_panel(series: int, weeks: int, seed: int = 42) -> Panel:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-01-01", periods=weeks + HORIZON, freq="W-FRI")
    week = np.arange(weeks + HORIZON)
    shape = 1 + 0.3 * np.sin(2 * np.pi * week / 52) + 0.1 * np.cos(4 * np.pi * week / 52)
    holiday = (dates.isocalendar().week.to_numpy() % 26 == 0).astype(float)
    levels = 10 ** rng.uniform(1, 4, size=series)
    trends = rng.normal(0, 0.002, size=series)
    values = (
        levels[:, None]
        * shape[None, :]
        * (1 + trends[:, None] * week[None, :])
        * (1 + 0.5 * holiday[None, :])
        * rng.lognormal(0, 0.1, size=(series, weeks + HORIZON))
    )
    ids = np.repeat([f"s{i:05d}" for i in range(series)], weeks + HORIZON)
    frame = pd.DataFrame(
        {
            "unique_id": ids,
            "ds": np.tile(dates.to_numpy(), series),
            "y": values.ravel(),
            "holiday": np.tile(holiday, series),
        }
    )
    past = np.tile(week < weeks, series)
    history = frame[past].reset_index(drop=True)
    future = frame[~past].drop(columns="y").reset_index(drop=True)
    return Panel(history=history, future=future, freq="W-FRI", season_length=52, exog=("holiday",))


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(label: str, step: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (this process and its worker processes) of one step."""
    started, cpu = time.perf_counter(), _cpu()
    step()
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    print(f"{label}: {seconds:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=30_000)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=("lightgbm",),
        help="time one member alone (a second process beside a long run; no same-process ratios)",
    )
    args = parser.parse_args()
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, SeasonalNaive

    panel = synthetic_panel(args.series, args.weeks)
    print(f"{args.series:,} synthetic series × {args.weeks} weeks, {HORIZON}-week forecast, {args.jobs} jobs")
    frame = panel.history[["unique_id", "ds", "y"]]

    def statistical(model: Any) -> Callable[[], Any]:
        return lambda: StatsForecast(models=[model], freq=panel.freq, n_jobs=args.jobs).forecast(df=frame, h=HORIZON)

    options = ModelOptions(n_jobs=args.jobs)

    def lightgbm() -> Any:
        learner = lightgbm_forecaster(panel, args.weeks, options)
        learner.fit(panel.history, static_features=[])
        return learner.predict(h=HORIZON, X_df=panel.future)

    if args.only == "lightgbm":
        timed("LightGBM", lightgbm)
        return
    baseline = timed("seasonal naive", statistical(SeasonalNaive(season_length=52)))
    rows = [("seasonal naive", baseline)]
    rows.append(("AutoETS", timed("AutoETS", statistical(AutoETS(season_length=1)))))
    rows.append(
        (
            MSTL_ETS,
            timed(MSTL_ETS, statistical(MSTL(season_length=52, trend_forecaster=AutoETS(model="ZZN")))),
        )
    )
    rows.append(("LightGBM with the signal", timed("LightGBM", lightgbm)))
    ets = rows[1][1]
    floor = max(baseline[1], 1e-3)  # seasonal naive may take less CPU than the clock resolves
    print()
    print("| step | wall s | CPU s | CPU × seasonal naive | CPU × AutoETS |")
    print("|---|---:|---:|---:|---:|")
    for label, (seconds, cpu) in rows:
        print(f"| {label} | {seconds:.1f} | {cpu:.1f} | {cpu / floor:.1f} | {cpu / ets[1]:.2f} |")
    # the chosen ensemble for a weekly panel (demand.ensemble_members): MSTL-ETS and LightGBM averaged
    chosen_wall = rows[2][1][0] + rows[3][1][0]
    chosen = rows[2][1][1] + rows[3][1][1]
    print(
        f"| ensemble (MSTL-ETS + LightGBM, averaged) | {chosen_wall:.1f} | {chosen:.1f} | {chosen / floor:.1f} | "
        f"{chosen / ets[1]:.2f} |"
    )
    everything = rows[1][1][1] + chosen
    print(
        f"| all models of `forecast evaluate` (AutoETS + MSTL-ETS + LightGBM) | – | {everything:.1f} | "
        f"{everything / floor:.1f} | {everything / ets[1]:.2f} |"
    )
    print(f"wall ratio, ensemble ÷ AutoETS: {chosen_wall / ets[0]:.2f}")


if __name__ == "__main__":
    main()
