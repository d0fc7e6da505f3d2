"""The bookings forecast's arithmetic, free of the database: a Monte-Carlo simulation of the open
pipeline plus new business that is not in the pipeline yet.

Each simulation decides every open deal's outcome (won with its probability) and its close date
(the expected close date moved by a slippage drawn from the organization's own history, never
earlier than today), then adds new business: for each month a Poisson number of new wins whose rate
is the recent won-deal rate times the share of deals that are opened *and* won within the time left
(the empirical cycle-time CDF), each one a draw from the recent won deals (so it carries an owner,
region and product line). Totals per month, quarter, owner, region and product line come from the
same draws, so they add up across dimensions in every simulation.

The expected value is computed exactly (probability × amount × the share of slippage draws landing
in the period, plus the run-rate's mean), so it does not wobble with the number of simulations and
deviation attribution can split it deal by deal; the 80 % interval is the 10th–90th percentile of
the simulated totals. A seeded generator makes a forecast reproducible.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

DIMENSIONS = ("total", "owner", "region", "product_line")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Period:
    granularity: str  # month | quarter
    label: str
    start: date
    end: date  # exclusive


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_label(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def horizon(as_of: date) -> tuple[list[Period], list[Period]]:
    """The months from the current one to the end of the next quarter, and those two quarters."""
    quarter_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    end = add_months(quarter_start, 6)
    months: list[Period] = []
    cursor = month_start(as_of)
    while cursor < end:
        following = add_months(cursor, 1)
        months.append(Period("month", f"{cursor.year}-{cursor.month:02d}", cursor, following))
        cursor = following
    quarters = [
        Period("quarter", quarter_label(start), start, add_months(start, 3))
        for start in (quarter_start, add_months(quarter_start, 3))
    ]
    return months, quarters


@dataclass
class Pipeline:
    """The open deals: amount, win probability, expected close date and the dimension keys."""

    ids: Sequence[int]
    amount: FloatArray
    probability: FloatArray
    expected_close: Sequence[date]
    keys: dict[str, Sequence[int | None]] = field(default_factory=dict)  # owner / region / product_line


@dataclass
class History:
    """Recent won deals (the run-rate basis): amount, cycle days (opened → won) and dimension keys,
    over a window of ``window_days`` ending at the forecast date."""

    amount: FloatArray
    cycle_days: IntArray
    keys: dict[str, Sequence[int | None]] = field(default_factory=dict)
    window_days: int = 365


@dataclass
class Cell:
    expected: float = 0.0
    low: float = 0.0
    high: float = 0.0
    run_rate: float = 0.0


def close_month_index(expected_close: date, slip_days: int, as_of: date, months: Sequence[Period]) -> int:
    """Which horizon month a deal expected on ``expected_close`` closes in after slipping (−1: outside)."""
    day = max(expected_close + timedelta(days=int(slip_days)), as_of)
    for index, period in enumerate(months):
        if period.start <= day < period.end:
            return index
    return -1


def month_indices(
    expected_close: Sequence[date], slip_values: IntArray, as_of: date, months: Sequence[Period]
) -> IntArray:
    """deals × slip values: the horizon month each deal lands in after each slip (−1: outside)."""
    expected = np.fromiter((day.toordinal() for day in expected_close), dtype=np.int64, count=len(expected_close))
    days = np.maximum(expected[:, None] + np.asarray(slip_values, dtype=np.int64)[None, :], as_of.toordinal())
    bounds = np.array([period.start.toordinal() for period in months] + [months[-1].end.toordinal()])
    index = np.searchsorted(bounds, days, side="right") - 1
    return np.where((index >= 0) & (index < len(months)), index, -1).astype(np.int64)


def new_business_rates(history: History, as_of: date, months: Sequence[Period]) -> FloatArray:
    """Expected number of new wins (deals not open today) per horizon month: the daily won-deal rate
    times, summed over the month's remaining days, the share of cycles no longer than the days left."""
    rates = np.zeros(len(months))
    if len(history.amount) == 0:
        return rates
    daily = len(history.amount) / history.window_days
    cycles = np.sort(np.asarray(history.cycle_days))
    for index, period in enumerate(months):
        first = max((period.start - as_of).days, 1)  # a deal opened after today can be won tomorrow at the earliest
        last = (period.end - as_of).days  # exclusive
        if last <= first:
            continue
        days = np.arange(first, last)
        rates[index] = daily * float(np.searchsorted(cycles, days, side="right").sum()) / len(cycles)
    return rates


def _group_index(values: Sequence[int | None]) -> tuple[IntArray, list[int | None]]:
    levels = sorted(set(values), key=lambda value: (value is None, value or 0))
    lookup = {value: index for index, value in enumerate(levels)}
    return np.fromiter((lookup[value] for value in values), dtype=np.int64, count=len(values)), levels


def simulate(
    pipeline: Pipeline,
    history: History,
    slips: IntArray,
    as_of: date,
    *,
    simulations: int = 2000,
    seed: int = 20261127,
    chunk: int = 250,
) -> dict[tuple[str, str, str, int | None], Cell]:
    """Expected value, 80 % interval and run-rate per (granularity, period, dimension, key)."""
    months, quarters = horizon(as_of)
    rng = np.random.default_rng(seed)
    n_months = len(months)
    slips = np.asarray(slips if len(slips) else [0], dtype=np.int64)
    deals = len(pipeline.amount)
    amount = np.asarray(pipeline.amount, dtype=np.float64)
    probability = np.clip(np.asarray(pipeline.probability, dtype=np.float64), 0.0, 1.0)
    rates = new_business_rates(history, as_of, months)
    quarter_of_month = np.array(
        [
            next(q for q, quarter in enumerate(quarters) if quarter.start <= month.start < quarter.end)
            for month in months
        ]
    )

    # every deal's month for every distinct slippage value (−1: outside the horizon)
    slip_values, slip_column = np.unique(slips, return_inverse=True)
    landing_table = month_indices(pipeline.expected_close, slip_values, as_of, months)
    # the exact means: the share of slippage draws landing in each month
    shares = None
    if deals:
        weights = np.bincount(slip_column, minlength=len(slip_values)).astype(np.float64) / len(slips)
        shares = np.zeros((deals, n_months))
        for m in range(n_months):
            shares[:, m] = ((landing_table == m) * weights[None, :]).sum(axis=1)
    history_mean = np.asarray(history.amount, dtype=np.float64)

    groups: dict[str, tuple[IntArray, list[int | None], IntArray, list[int | None]]] = {}
    for dimension in DIMENSIONS:
        levels: list[int | None]
        new_levels: list[int | None]
        if dimension == "total":
            deal_group, levels = np.zeros(deals, dtype=np.int64), [None]
            new_group, new_levels = np.zeros(len(history.amount), dtype=np.int64), [None]
        else:
            deal_group, levels = _group_index(pipeline.keys.get(dimension, [None] * deals))
            new_group, new_levels = _group_index(history.keys.get(dimension, [None] * len(history.amount)))
        # one level list per dimension for both sources
        union: list[int | None] = sorted(set(levels) | set(new_levels), key=lambda value: (value is None, value or 0))
        position = {value: index for index, value in enumerate(union)}
        deal_group = np.array([position[levels[i]] for i in deal_group], dtype=np.int64)
        new_group = np.array([position[new_levels[i]] for i in new_group], dtype=np.int64)
        groups[dimension] = (deal_group, union, new_group, union)

    totals: dict[str, FloatArray] = {
        dimension: np.zeros((simulations, n_months, len(groups[dimension][1]))) for dimension in DIMENSIONS
    }
    done = 0
    while done < simulations:
        size = min(chunk, simulations - done)
        if deals:
            won = rng.random((size, deals)) < probability
            drawn = rng.integers(0, len(slips), size=(size, deals))
            landed = landing_table[np.arange(deals)[None, :], slip_column[drawn]]
            counted = won & (landed >= 0)
            sims, columns = np.nonzero(counted)
            for dimension in DIMENSIONS:
                deal_group, levels = groups[dimension][0], groups[dimension][1]
                flat = ((sims * n_months + landed[sims, columns]) * len(levels) + deal_group[columns]).astype(np.int64)
                totals[dimension][done : done + size] += np.bincount(
                    flat, weights=amount[columns], minlength=size * n_months * len(levels)
                ).reshape(size, n_months, len(levels))
        if len(history.amount) and rates.sum() > 0:
            arrivals = rng.poisson(rates, size=(size, n_months)).astype(np.int64)
            draws = rng.integers(0, len(history.amount), size=int(arrivals.sum()))
            flat_months = np.repeat(np.tile(np.arange(n_months), size), arrivals.ravel())
            flat_sims = np.repeat(np.repeat(np.arange(size), n_months), arrivals.ravel())
            for dimension in DIMENSIONS:
                new_group, levels = groups[dimension][2], groups[dimension][3]
                flat = ((flat_sims * n_months + flat_months) * len(levels) + new_group[draws]).astype(np.int64)
                totals[dimension][done : done + size] += np.bincount(
                    flat, weights=history_mean[draws], minlength=size * n_months * len(levels)
                ).reshape(size, n_months, len(levels))
        done += size

    cells: dict[tuple[str, str, str, int | None], Cell] = {}
    for dimension in DIMENSIONS:
        deal_group, levels, new_group, _ = groups[dimension]
        sims_total = totals[dimension]
        # exact means per month and group
        pipeline_mean = np.zeros((n_months, len(levels)))
        if deals and shares is not None:
            weighted = shares * (amount * probability)[:, None]  # deals × months
            for g in range(len(levels)):
                pipeline_mean[:, g] = weighted[deal_group == g].sum(axis=0)
        run_mean = np.zeros((n_months, len(levels)))
        if len(history.amount):
            per_group = np.bincount(new_group, weights=history_mean, minlength=len(levels)) / len(history.amount)
            run_mean = rates[:, None] * per_group[None, :]
        for g, key in enumerate(levels):
            for m, month in enumerate(months):
                values = sims_total[:, m, g]
                cells[("month", month.label, dimension, key)] = Cell(
                    expected=float(pipeline_mean[m, g] + run_mean[m, g]),
                    low=float(np.percentile(values, 10)),
                    high=float(np.percentile(values, 90)),
                    run_rate=float(run_mean[m, g]),
                )
            for q, quarter in enumerate(quarters):
                in_quarter = quarter_of_month == q
                values = sims_total[:, in_quarter, g].sum(axis=1)
                cells[("quarter", quarter.label, dimension, key)] = Cell(
                    expected=float(pipeline_mean[in_quarter, g].sum() + run_mean[in_quarter, g].sum()),
                    low=float(np.percentile(values, 10)),
                    high=float(np.percentile(values, 90)),
                    run_rate=float(run_mean[in_quarter, g].sum()),
                )
    return cells


def period_share(expected_close: date, slips: Sequence[int], as_of: date, period: Period) -> float:
    """The share of the slippage draws that put a deal expected on ``expected_close`` in ``period``
    (a close that would fall before ``as_of`` counts on ``as_of``). Counted on the sorted draws with
    bisection — pages explain hundreds of deals against hundreds of draws."""
    sample = sorted(slips) if slips else [0]
    overdue = (as_of - expected_close).days  # a slip below this lands on as_of
    inside = bisect_left(sample, overdue) if period.start <= as_of < period.end else 0
    low = max(overdue, (period.start - expected_close).days)
    high = (period.end - expected_close).days
    if high > low:
        inside += bisect_left(sample, high) - bisect_left(sample, low)
    return inside / len(sample)


def periods_by_label(as_of: date) -> dict[str, Period]:
    months, quarters = horizon(as_of)
    return {period.label: period for period in (*months, *quarters)}


def as_jsonable(cells: dict[tuple[str, str, str, int | None], Cell]) -> list[dict[str, Any]]:
    return [
        {"granularity": g, "period": p, "dimension": d, "key": k, **vars(cell)} for (g, p, d, k), cell in cells.items()
    ]
