"""Reading a long-format history (``series_id, date, value`` plus optional signal columns).

Every problem is reported with the line of the file it is on (line 1 is the header), as a
:class:`~closeloop.core.errors.ValidationFailed`, and nothing is forecast from a half-read file.
Rows whose ``value`` is empty *after* a series' last observed value are its future: they carry the
signals known in advance (a holiday, a planned price) for the forecast horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from closeloop.core.errors import FieldProblem, ValidationFailed

REQUIRED = ("series_id", "date", "value")

#: the frequencies the command accepts, and the season length each implies
SEASONS = {"D": 7, "W": 52, "M": 12, "Q": 4}

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


@dataclass(frozen=True)
class Panel:
    """A regular panel of series ready for statsforecast / mlforecast (``unique_id, ds, y``, signals)."""

    history: pd.DataFrame
    future: pd.DataFrame
    freq: str
    season_length: int
    exog: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def series_count(self) -> int:
        return int(self.history["unique_id"].nunique())

    @property
    def zero_share(self) -> float:
        return float((self.history["y"] == 0).mean())


def _line(index: Any) -> int:
    # DataFrame index 0 is the first data row, on line 2 of the file
    return int(index) + 2


def _first_bad(mask: pd.Series) -> int | None:
    bad = mask[mask]
    return None if bad.empty else _line(bad.index[0])


def pandas_freq(freq: str, dates: pd.Series) -> str:
    """The pandas offset alias for ``freq`` anchored as the data are (weeks ending on Fridays → W-FRI)."""
    key = freq.upper()
    if key == "D":
        return "D"
    if key == "W":
        weekdays = dates.dt.dayofweek.unique()
        if len(weekdays) != 1:
            raise ValidationFailed.one("date", "weekly dates must all fall on the same weekday")
        return f"W-{_WEEKDAYS[int(weekdays[0])]}"
    if key == "M":
        if bool((dates.dt.day == 1).all()):
            return "MS"
        if bool(dates.dt.is_month_end.all()):
            return "ME"
        raise ValidationFailed.one("date", "monthly dates must all be the first or all the last day of a month")
    if key == "Q":
        if bool(dates.dt.is_quarter_start.all()):
            return "QS"
        if bool(dates.dt.is_quarter_end.all()):
            return "QE"
        raise ValidationFailed.one("date", "quarterly dates must all start or all end a quarter")
    raise ValidationFailed.one("freq", f"unknown frequency '{freq}' (use one of {', '.join(SEASONS)})")


def infer_freq(dates: pd.Series) -> str:
    """D, W, M or Q from the most common gap between consecutive distinct dates."""
    distinct = pd.Series(np.sort(dates.unique()))
    if len(distinct) < 3:
        raise ValidationFailed.one("date", "need at least three distinct dates to tell the frequency; pass --freq")
    days = distinct.diff().dropna().dt.days.mode().iloc[0]
    for freq, low, high in (("D", 1, 1), ("W", 7, 7), ("M", 28, 31), ("Q", 89, 92)):
        if low <= days <= high:
            return freq
    raise ValidationFailed.one("date", f"dates are {days} days apart, which is not daily, weekly, monthly or quarterly")


def read_history(path: Path, *, exog: tuple[str, ...] = (), freq: str | None = None) -> Panel:
    """Read and check a long-format CSV; raise ``ValidationFailed`` naming the column or line at fault."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ValidationFailed.one("file", f"{path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValidationFailed.one("file", f"{path} is not a readable CSV file ({error})") from None
    raw.columns = [str(column).strip() for column in raw.columns]
    return frame_to_panel(raw, exog=exog, freq=freq)


def frame_to_panel(raw: pd.DataFrame, *, exog: tuple[str, ...] = (), freq: str | None = None) -> Panel:
    """Check a frame of strings laid out as the CSV is and turn it into a :class:`Panel`."""
    missing = [column for column in (*REQUIRED, *exog) if column not in raw.columns]
    if missing:
        problems = [FieldProblem(column, "column is missing from the file", "missing") for column in missing]
        raise ValidationFailed(problems, message=f"missing column(s): {', '.join(missing)}")
    if raw.empty:
        raise ValidationFailed.one("file", "the file has no data rows")
    series_id = raw["series_id"].astype(str).str.strip()
    if (line := _first_bad(series_id == "")) is not None:
        raise ValidationFailed.one(f"line {line}", "series_id is empty")
    dates = pd.to_datetime(raw["date"].str.strip(), errors="coerce", format="ISO8601")
    if (line := _first_bad(dates.isna())) is not None:
        text = raw["date"].iloc[line - 2]
        raise ValidationFailed.one(f"line {line}", f"date '{text}' is not a date (use YYYY-MM-DD)")
    value_text = raw["value"].str.strip()
    values = pd.to_numeric(value_text.where(value_text != ""), errors="coerce")
    if (line := _first_bad(values.isna() & (value_text != ""))) is not None:
        raise ValidationFailed.one(f"line {line}", f"value '{value_text.iloc[line - 2]}' is not a number")
    frame = pd.DataFrame({"unique_id": series_id, "ds": dates, "y": values.astype("float64")})
    for column in exog:
        text = raw[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        if (line := _first_bad(numbers.isna())) is not None:
            shown = text.iloc[line - 2]
            raise ValidationFailed.one(
                f"line {line}", f"{column} '{shown}' is not a number" if shown else f"{column} is empty"
            )
        frame[column] = numbers.astype("float64")
    duplicated = frame.duplicated(["unique_id", "ds"])
    if (line := _first_bad(duplicated)) is not None:
        raise ValidationFailed.one(f"line {line}", f"series {frame['unique_id'].iloc[line - 2]} has this date twice")
    frame = frame.sort_values(["unique_id", "ds"], kind="stable")
    # a series' future: the rows after its last observed value (their value is empty)
    observed = frame["y"].notna()
    last_seen = frame["ds"].where(observed).groupby(frame["unique_id"]).transform("max")
    is_future = frame["ds"] > last_seen
    gap = ~observed & ~is_future
    if (line := _first_bad(gap.sort_index())) is not None:
        raise ValidationFailed.one(
            f"line {line}", "value is empty before the series' last observed value (only future rows may be empty)"
        )
    history = frame[~is_future & observed].reset_index(drop=True)
    future = frame[is_future].reset_index(drop=True)
    if history.empty:
        raise ValidationFailed.one("value", "no row has a value")
    freq_key = (freq or infer_freq(history["ds"])).upper()
    if freq_key not in SEASONS:
        raise ValidationFailed.one("freq", f"unknown frequency '{freq}' (use one of {', '.join(SEASONS)})")
    alias = pandas_freq(freq_key, frame["ds"])
    _check_regular(history, alias)
    return Panel(history=history, future=future, freq=alias, season_length=SEASONS[freq_key], exog=exog)


def _check_regular(history: pd.DataFrame, alias: str) -> None:
    """Each series must have one row per period from its first to its last date (no gaps)."""
    offset = pd.tseries.frequencies.to_offset(alias)
    for uid, group in history.groupby("unique_id", sort=False):
        expected = pd.date_range(group["ds"].iloc[0], group["ds"].iloc[-1], freq=offset)
        if len(expected) != len(group) or not bool((expected == pd.DatetimeIndex(group["ds"])).all()):
            present = set(group["ds"])
            hole = next((d for d in expected if d not in present), None)
            if hole is None:
                raise ValidationFailed.one("date", f"series {uid} has dates off the {alias} grid")
            raise ValidationFailed.one("date", f"series {uid} has no row for {hole:%Y-%m-%d} ({alias} steps)")
