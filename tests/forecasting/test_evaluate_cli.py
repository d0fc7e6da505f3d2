"""``closeloop forecast evaluate`` on tiny CSV files: the table, the forecast file, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from closeloop.cli.main import app


@pytest.fixture(scope="module")
def weekly_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    dates = pd.date_range("2021-01-08", periods=120, freq="W-FRI")
    rows = []
    for series in ("north", "south"):
        holiday = (dates.isocalendar().week.to_numpy() % 13) == 0
        for index, day in enumerate(dates):
            value = 500 + 100 * np.sin(2 * np.pi * index / 52) + (300 if holiday[index] else 0) + rng.normal(0, 10)
            rows.append((series, day.strftime("%Y-%m-%d"), f"{value:.2f}", int(holiday[index])))
        # four future weeks whose holiday flag is known in advance
        for step in range(1, 5):
            day = dates[-1] + pd.Timedelta(weeks=step)
            rows.append((series, day.strftime("%Y-%m-%d"), "", int(day.isocalendar()[1] % 13 == 0)))
    path = tmp_path_factory.mktemp("forecast") / "history.csv"
    pd.DataFrame(rows, columns=["series_id", "date", "value", "holiday"]).to_csv(path, index=False)
    return path


def test_evaluate_prints_the_scores_and_writes_the_forecast(weekly_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(
        app,
        ["forecast", "evaluate", str(weekly_csv), "--horizon", "4", "--exog", "holiday", "--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    for text in ("2 series", "W-FRI", "SeasonalNaive", "AutoETS", "LightGBM", "Ensemble", "WAPE", "MASE", "chosen"):
        assert text in result.output
    written = pd.read_csv(output)
    assert list(written.columns[:4]) == ["series_id", "date", "forecast", "model"]
    assert len(written) == 8
    assert set(written["series_id"]) == {"north", "south"}
    assert written["date"].min() > "2023-04-21"
    assert written["forecast"].notna().all()


def test_without_an_output_file_it_says_how_to_get_the_forecast(weekly_csv: Path) -> None:
    result = CliRunner().invoke(app, ["forecast", "evaluate", str(weekly_csv), "--horizon", "4"])
    assert result.exit_code == 0, result.output
    assert "add -o FILE.csv to fit" in result.output
    assert "write the next 4 periods" in result.output


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("series_id,date\na,2024-01-01\n", [], "missing column(s): value"),
        ("series_id,date,value\na,2024-01-01,1\na,2024-13-45,2\n", [], "line 3: date '2024-13-45' is not a date"),
        ("series_id,date,value\na,2024-01-01,1\na,2024-01-08,lots\n", [], "line 3: value 'lots' is not a number"),
        ("series_id,date,value\na,2024-01-01,1\n", ["--exog", "price"], "missing column(s): price"),
        (
            "series_id,date,value,price\na,2024-01-01,1,2.5\na,2024-01-08,2,\n",
            ["--exog", "price"],
            "line 3: price is empty",
        ),
        ("series_id,date,value\na,2024-01-01,1\na,2024-01-01,2\n", [], "line 3: series a has this date twice"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(tmp_path: Path, content: str, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["forecast", "evaluate", str(_write(tmp_path, content)), "--horizon", "2", *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["forecast", "evaluate", str(tmp_path / "nope.csv"), "--horizon", "2"])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
