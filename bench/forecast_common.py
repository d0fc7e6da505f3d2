"""Loading the shared real data sets into the long format ``closeloop forecast evaluate`` reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.conftest import shared_data  # noqa: E402 - after the path is set

from closeloop.forecasting.demand import BASELINE, Backtest  # noqa: E402

WALMART_SIGNALS = ("Holiday_Flag", "Temperature", "Fuel_Price", "CPI", "Unemployment")
M5_SIGNALS = ("event_days", "snap_days")


def walmart_weekly() -> pd.DataFrame:
    """45 stores × 143 weeks (weeks ending on Fridays) with their five signals, as text columns."""
    raw = pd.read_csv(shared_data("walmart-weekly") / "Walmart_Store_sales.csv", dtype=str)
    raw["date"] = pd.to_datetime(raw["Date"], format="%d-%m-%Y").dt.strftime("%Y-%m-%d")
    return raw.rename(columns={"Store": "series_id", "Weekly_Sales": "value"})[
        ["series_id", "date", "value", *WALMART_SIGNALS]
    ]


def m5_weekly() -> pd.DataFrame:
    """823 FOODS_3 items of store TX_3: daily units (train + the M5 validation month) summed to the
    277 complete Walmart weeks (Saturday–Friday), with the week's event days and SNAP days as signals."""
    folder = shared_data("m5-foods3-tx3")
    train = pd.read_csv(folder / "sales_train_validation_afcs2025.csv")
    test = pd.read_csv(folder / "sales_test_validation_afcs2025.csv")
    wide = train.merge(test, on="id")
    calendar = pd.read_csv(folder / "calendar_afcs2025.csv")
    calendar["d"] = [f"d_{i}" for i in range(1, len(calendar) + 1)]
    calendar["ds"] = pd.to_datetime(calendar["date"], format="%m/%d/%Y")
    days = [column for column in wide.columns if column.startswith("d_")]
    calendar = calendar[calendar["d"].isin(days)]
    calendar["event_day"] = calendar["event_name_1"].notna().astype(int)
    weeks = calendar.groupby("wm_yr_wk").agg(
        week_end=("ds", "max"), n=("ds", "size"), event_days=("event_day", "sum"), snap_days=("snap_TX", "sum")
    )
    weeks = weeks[weeks["n"] == 7]
    long = wide.melt(id_vars="id", value_vars=days, var_name="d", value_name="units")
    long = long.merge(calendar[["d", "wm_yr_wk"]], on="d")
    weekly = long.groupby(["id", "wm_yr_wk"], as_index=False)["units"].sum()
    weekly = weekly.merge(weeks, left_on="wm_yr_wk", right_index=True)
    return pd.DataFrame(
        {
            "series_id": weekly["id"].str.replace("_validation", "", regex=False),
            "date": weekly["week_end"].dt.strftime("%Y-%m-%d"),
            "value": weekly["units"].astype(str),
            "event_days": weekly["event_days"].astype(str),
            "snap_days": weekly["snap_days"].astype(str),
        }
    )


def score_table(title: str, result: Backtest) -> str:
    """A markdown table of a backtest: WAPE, 1 − WAPE, MASE and the WAPE change against seasonal naive."""
    baseline = result.score(BASELINE).wape
    lines = [
        f"#### {title}",
        "",
        "| model | WAPE | 1 − WAPE | MASE | WAPE vs seasonal naive |",
        "|---|---:|---:|---:|---:|",
    ]
    for score in result.scores:
        change = "–" if score.wape is None or not baseline else f"{score.wape / baseline - 1:+.1%}"
        lines.append(
            f"| {score.model}{' (chosen)' if score.model == result.chosen else ''} | "
            f"{_pct(score.wape)} | {_pct(score.accuracy)} | "
            f"{'–' if score.mase is None else f'{score.mase:.3f}'} | {change} |"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"
