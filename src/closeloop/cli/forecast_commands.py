"""``closeloop forecast evaluate``: measure the forecasting models on your own history before trusting them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from closeloop.cli.common import console, errors, reports_errors
from closeloop.forecasting.data import read_history
from closeloop.forecasting.demand import BASELINE, ModelOptions, backtest, forecast

forecast_app = typer.Typer(help="Forecasting: backtests and forecasts of your own series.", no_args_is_help=True)


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


@forecast_app.command("evaluate")
@reports_errors
def evaluate(
    file: Annotated[Path, typer.Argument(help="Long-format CSV: series_id, date, value and any signal columns")],
    horizon: Annotated[int, typer.Option("--horizon", help="Periods to forecast")],
    freq: Annotated[str | None, typer.Option("--freq", help="D, W, M or Q (default: told from the dates)")] = None,
    exog: Annotated[
        list[str] | None, typer.Option("--exog", help="A signal column for the LightGBM model (repeatable)")
    ] = None,
    windows: Annotated[int, typer.Option("--windows", help="Backtest origins, each `horizon` periods apart")] = 3,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the final forecasts to this CSV")] = None,
    arima: Annotated[bool, typer.Option("--arima/--no-arima", help="Also backtest AutoARIMA (slower)")] = False,
    jobs: Annotated[int, typer.Option("--jobs", help="Processes/threads for fitting")] = 1,
) -> None:
    """Backtest seasonal naive, AutoETS, LightGBM with the signals and their ensemble on FILE (rolling
    origin), print WAPE, 1 − WAPE and MASE of each, and forecast HORIZON periods with the model that
    backtested best."""
    panel = read_history(file, exog=tuple(exog or ()), freq=freq)
    options = ModelOptions(arima=arima, n_jobs=max(1, jobs))
    console.print(
        f"{panel.series_count:,} series, {len(panel.history):,} observations, frequency {panel.freq}, "
        f"season {panel.season_length}, zero values {panel.zero_share:.0%}"
        + (f", signals: {', '.join(panel.exog)}" if panel.exog else "")
    )
    result = backtest(panel, horizon=horizon, windows=windows, options=options)
    baseline = result.score(BASELINE).wape
    table = Table(title=f"Backtest: {windows} origins × {horizon} periods")
    table.add_column("model", no_wrap=True)
    for name in ("WAPE", "1 − WAPE", "MASE", "WAPE vs seasonal naive"):
        table.add_column(name, justify="right", no_wrap=True)
    for score in result.scores:
        change = None if score.wape is None or not baseline else score.wape / baseline - 1.0
        table.add_row(
            score.model + (" ✓" if score.model == result.chosen else ""),
            _number(score.wape, ".2%"),
            _number(score.accuracy, ".2%"),
            _number(score.mase, ".3f"),
            _number(change, "+.1%"),
        )
    console.print(table)
    console.print(f"chosen for the forecast: {result.chosen} (lowest backtest WAPE)")
    if output is not None:
        final = forecast(panel, horizon=horizon, model=result.chosen, train_length=result.train_length, options=options)
        final = final.rename(columns={"unique_id": "series_id", "ds": "date"})
        final["date"] = final["date"].dt.strftime("%Y-%m-%d")
        columns = ["series_id", "date", "forecast", "model"]
        final[columns + [c for c in final.columns if c not in columns]].to_csv(output, index=False)
        console.print(f"wrote {len(final):,} forecasts ({horizon} periods × {panel.series_count:,} series) to {output}")
    for note in panel.notes:
        errors.print(f"note: {note}", highlight=False)
