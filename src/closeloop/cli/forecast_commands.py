"""``closeloop forecast evaluate``: measure the forecasting models on your own history before trusting them;
``closeloop forecast snapshot``: take a bookings-forecast snapshot now."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.cli.common import console, database, errors, reports_errors, resolve_organization
from closeloop.forecasting.data import read_history
from closeloop.forecasting.demand import BASELINE, ModelOptions, backtest, forecast

forecast_app = typer.Typer(help="Forecasting: backtests and forecasts of your own series.", no_args_is_help=True)


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def _import_rows(
    file: Path, org: str | None, store: Callable[[Session, int, list[dict[str, str]]], int]
) -> tuple[str, int]:
    """Read FILE's rows (a header line, UTF-8 with or without BOM) and store them in the organization
    in one transaction: the organization's name and how many ``store`` kept."""
    import csv

    db = database()
    organization = resolve_organization(db, org)
    with file.open(newline="", encoding="utf-8-sig") as handle:
        lines = [{key.strip(): (value or "") for key, value in row.items() if key} for row in csv.DictReader(handle)]
    with db.unit_of_work(None, system=True) as session:
        stored = store(session, organization.id, lines)
    return organization.name, stored


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
    else:
        console.print(f"add -o FILE.csv to fit {result.chosen} on all the history and write the next {horizon} periods")
    for note in panel.notes:
        errors.print(f"note: {note}", highlight=False)


@forecast_app.command("snapshot")
@reports_errors
def snapshot(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
    simulations: Annotated[int, typer.Option("--simulations", min=100, max=100_000)] = 2000,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: the date)")] = None,
) -> None:
    """Take a bookings-forecast snapshot now (as the daily task does) and print its totals by month
    and quarter: expected value with the 80 % interval, run-rate and the commit / best case / pipeline
    categories."""
    from closeloop.forecasting.bookings import take_snapshot
    from closeloop.forecasting.models import BookingsForecastRow

    db = database()
    organization = resolve_organization(db, org)
    with db.unit_of_work(None, system=True) as session:
        taken = take_snapshot(session, organization.id, simulations=simulations, seed=seed)
        rows = list(
            session.scalars(
                select(BookingsForecastRow)
                .where(BookingsForecastRow.snapshot_id == taken.id, BookingsForecastRow.dimension == "total")
                .order_by(BookingsForecastRow.granularity.desc(), BookingsForecastRow.period_start)
            )
        )
        table = Table(title=f"Bookings forecast · {organization.name} · {taken.as_of} · {taken.method}")
        for name in (
            "period",
            "won so far",
            "expected",
            "80 % interval",
            "run-rate",
            "commit",
            "best case",
            "pipeline",
        ):
            table.add_column(name, justify="left" if name == "period" else "right", no_wrap=True)
        for row in rows:
            table.add_row(
                row.period,
                f"{row.won_to_date:,.0f}",
                f"{row.expected:,.0f}",
                f"{row.low:,.0f} – {row.high:,.0f}",
                f"{row.run_rate:,.0f}",
                f"{row.commit:,.0f}",
                f"{row.best_case:,.0f}",
                f"{row.pipeline:,.0f}",
            )
        console.print(table)
        console.print(
            f"snapshot {taken.id}: {taken.details.get('open_deals', 0):,} open deals, {simulations:,} simulations"
        )


@forecast_app.command("train")
@reports_errors
def train_win_probability(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
) -> None:
    """Train the organization's win-probability model now (as the weekly task does, Sundays 04:20)
    and print its holdout figures next to the stage rates'; the model is used only where it forecast
    the held-out deals at least as well."""
    from closeloop.forecasting.opportunities import retrain
    from closeloop.org import service as org_service

    db = database()
    organization = resolve_organization(db, org)
    with db.unit_of_work(org_service.system_actor(organization.id, label="cli: forecast train")) as session:
        stored = retrain(session, organization.id)
        figures = dict(stored.metrics)
        closed, won, serves = stored.closed_deals, stored.won_deals, stored.serves
    console.print(f"trained on {closed:,} closed deals ({won:,} won) of {organization.name}")
    if "brier" in figures:
        console.print(
            f"holdout of {figures.get('holdout', 0):,} deals: model AUC {figures.get('auc', 0):.3f}, "
            f"Brier {figures['brier']:.3f}; stage rates AUC {figures.get('stage_rate_auc', 0):.3f}, "
            f"Brier {figures.get('stage_rate_brier', 0):.3f}"
        )
    console.print("the model is used" if serves else "the stage rates forecast the holdout better: they stay in use")


@forecast_app.command("import-calendar")
@reports_errors
def import_calendar(
    file: Annotated[Path, typer.Argument(help="CSV: name, kind, starts_on[, ends_on, region, product_line]")],
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
) -> None:
    """Replace the organization's event calendar (holidays, tender dates, regulation changes) that
    deviation attribution reads. kind: holiday, tender, regulation or other; dates as YYYY-MM-DD
    (ends_on inclusive, default the start); region and product line by name or id, empty for all.
    A bad row stops the import, naming its line and field."""
    from closeloop.forecasting.events import import_events

    name, stored = _import_rows(file, org, import_events)
    console.print(f"stored {stored:,} calendar events for {name}")


@forecast_app.command("import-signals")
@reports_errors
def import_signals(
    file: Annotated[Path, typer.Argument(help="CSV: account, keyword, occurred_at[, source, count]")],
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
) -> None:
    """Store inquiry-keyword signals (what accounts searched or asked about, by day): each is also a
    ``signal.recorded`` event that rules can wake on. Accounts by id, external reference or exact
    name; dates ISO (UTC). A bad row stops the import, naming its line."""
    from closeloop.forecasting.signals import record_signals
    from closeloop.org import service as org_service

    name, stored = _import_rows(
        file,
        org,
        lambda session, organization_id, lines: record_signals(
            session, org_service.system_actor(organization_id, label="import-signals"), lines
        ),
    )
    console.print(f"stored {stored:,} signals for {name}")


@forecast_app.command("import-stock")
@reports_errors
def import_stock(
    file: Annotated[
        Path, typer.Argument(help="CSV: account, product, on_hand[, on_order, lead_time_days, reported_at]")
    ],
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
) -> None:
    """Store dealers' stock reports (the input of replenishment suggestions): each row replaces the
    dealer and product's previous report. Accounts by id, external reference or exact name; products
    by id or code. A bad row stops the import, naming its line."""
    from closeloop.forecasting.actions import import_stock as store

    name, stored = _import_rows(file, org, store)
    console.print(f"stored {stored:,} stock reports for {name}")


@forecast_app.command("reservations")
@reports_errors
def reservations(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
    status: Annotated[str | None, typer.Option("--status", help="active or released (default: both)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Most rows shown, newest first")] = 100,
) -> None:
    """List the units of dealers' stock held for accounts (by the reserve_stock rule action), newest first."""
    from closeloop.forecasting.signals import list_reservations
    from closeloop.org import service as org_service

    db = database()
    organization = resolve_organization(db, org)
    actor = org_service.system_actor(organization.id, label="forecast-reservations")
    with db.reading(actor) as session:
        found = list_reservations(session, actor, status=status, limit=limit)
    table = Table("id", "account", "product", "quantity", "status", "created", "reason")
    for item in found.items:
        table.add_row(
            str(item["id"]), item["account"], item["product_code"] or item["product"],
            f"{item['quantity'].normalize():f}", item["status"], item["created_at"].strftime("%Y-%m-%d %H:%M"),
            item["reason"],
        )  # fmt: skip
    console.print(table)
    more = " (older ones beyond --limit)" if found.next_cursor else ""
    console.print(f"{len(found.items):,} reservations of {organization.name}{more}")


@forecast_app.command("release")
@reports_errors
def release_reservation(
    reservation_id: Annotated[int, typer.Argument(min=1, help="The reservation's id")],
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
) -> None:
    """Release a stock reservation: its units are available in the dealer's stock again (audited)."""
    from closeloop.forecasting.signals import release_visible
    from closeloop.org import service as org_service

    db = database()
    organization = resolve_organization(db, org)
    actor = org_service.system_actor(organization.id, label="forecast-release")
    with db.unit_of_work(actor) as session:
        released = release_visible(session, actor, reservation_id)
    console.print(
        f"released reservation {released['id']}: {released['quantity'].normalize():f} units of "
        f"{released['product']} for {released['account']}"
    )
