"""The bookings forecast's arithmetic, free of the database: a Monte-Carlo simulation of the open
pipeline plus new business that is not in the pipeline yet.

Each simulation decides every open deal's outcome (won with its probability) and its close date:
the expected close date moved by a slippage drawn from the organization's own history **among the
slips that leave the deal still open today** (a deal 40 days past its expected close can only be
one of the won deals that slipped 40 days or more: it is spread over the months those deals
closed in, instead of piling into the current month). A deal further past due than any won deal
ever slipped has no such history: it is **beyond history**, left out of every period and shown
apart, for its owner to re-date or close. Then the simulation adds new business: for each month a
Poisson number of new wins whose rate is the recent won-deal rate times the share of deals that are
opened *and* won within the time left (the empirical cycle-time CDF), each one a draw from the
recent won deals (so it carries an owner, region and product line). Totals per month, quarter,
owner, region and product line come from the same draws, so they add up across dimensions in every
simulation.

The expected value is computed exactly (probability × amount × the share of the deal's slippage
draws landing in the period, plus the run-rate's mean), so it does not wobble with the number of
simulations and deviation attribution can split it deal by deal; the 80 % interval is the
10th–90th percentile of the simulated totals, widened to take in the expected value when a
skewed distribution (one large deal at a low probability) puts its mean outside those
percentiles — it then covers more than 80 %. A seeded generator makes a forecast reproducible.

**One basis for every figure.** The categories count the same open deals spread over the months by
the same landing shares: per period, *pipeline* is the amount of every open deal times its share,
*best case* that of deals at proposal or negotiation, *commit* that of deals in negotiation; the
open part of the expected value is the pipeline weighted by win probability. So in every cell
commit ≤ best case ≤ pipeline, the open expected value ≤ pipeline, and
forecast = won so far + open expected + run-rate (the won part is added by the caller).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from closeloop.forecasting.landing import StageTiming
    from closeloop.forecasting.trend import Growth

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


#: the stages each category counts (pipeline: every open deal)
COMMIT_STAGES = frozenset({"negotiation"})
BEST_CASE_STAGES = frozenset({"negotiation", "proposal"})


@dataclass
class Pipeline:
    """The open deals: amount, win probability, expected close date, stage and the dimension keys."""

    ids: Sequence[int]
    amount: FloatArray
    probability: FloatArray
    expected_close: Sequence[date]
    keys: dict[str, Sequence[int | None]] = field(default_factory=dict)  # owner / region / product_line
    #: each deal's stage (for the commit / best case categories); empty: none is in those stages
    stage: Sequence[str] = ()


@dataclass
class History:
    """Recent won deals (the run-rate basis): amount, cycle days (opened → won) and dimension keys,
    over a window of ``window_days`` ending at the forecast date."""

    amount: FloatArray
    cycle_days: IntArray
    keys: dict[str, Sequence[int | None]] = field(default_factory=dict)
    window_days: int = 365
    #: days between each won deal's close and the forecast date (empty: the spread is not known)
    closed_ago: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: the business's trend per horizon month (:mod:`closeloop.forecasting.trend`); None: no trend
    growth: Growth | None = None


#: the run-rate window is cut into this many blocks to see how much the rate of won deals varies
RUN_RATE_BLOCKS = 12


def run_rate_dispersion(history: History) -> float:
    """How much more the number of won deals varies from block to block (a twelfth of the window)
    than a Poisson count would: φ in var = mean + φ·mean², from the counts' scatter around their
    straight-line trend (a growing business is not a noisy one), 0 when they vary no more than
    Poisson. Each simulation scales the month's new-business rate by a Gamma(1/φ, φ) draw."""
    if len(history.closed_ago) < 2:
        return 0.0
    width = history.window_days / RUN_RATE_BLOCKS
    block = np.minimum((np.asarray(history.closed_ago) // width).astype(np.int64), RUN_RATE_BLOCKS - 1)
    counts = np.bincount(block, minlength=RUN_RATE_BLOCKS).astype(np.float64)
    mean = counts.mean()
    positions = np.arange(RUN_RATE_BLOCKS, dtype=np.float64)
    slope, intercept = np.polyfit(positions, counts, 1)
    scatter = float(((counts - (slope * positions + intercept)) ** 2).sum() / (RUN_RATE_BLOCKS - 2))
    return float(max(0.0, (scatter - mean) / mean**2))


@dataclass
class Cell:
    """One period × dimension value: the open pipeline's part (the caller adds what was won so far)."""

    expected: float = 0.0
    low: float = 0.0
    high: float = 0.0
    run_rate: float = 0.0
    commit: float = 0.0
    best_case: float = 0.0
    pipeline: float = 0.0
    #: open deals with some chance of closing in the period (a share of their slippage draws lands in it)
    open_deals: int = 0


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


@dataclass
class Landing:
    """Where each open deal lands if won: the share of its draws in each horizon month (the exact
    means) and a way to draw it per simulation.

    By default a deal's close is its expected close moved by a slippage drawn from the won deals
    that slipped at least as far as it is past due. A deal whose stage has learned timing
    (:mod:`closeloop.forecasting.landing`) lands instead ``until_close`` days from the snapshot,
    drawn uniformly from its cohort's points. Either way a deal past due beyond every slip in the
    history (``possible`` False) lands nowhere."""

    shares: FloatArray  # deals × months
    possible: npt.NDArray[np.bool_]
    landing_table: IntArray  # deals × distinct slips: month index (−1 outside)
    column_of_sorted: IntArray  # the distinct-slip column of each position in the sorted sample
    first_draw: IntArray
    slip_count: int
    timed: npt.NDArray[np.bool_]  # deals landing by their stage's timing
    low: IntArray  # their cohort's range in point_month
    high: IntArray
    point_month: IntArray

    @classmethod
    def of(
        cls,
        pipeline: Pipeline,
        slips: IntArray,
        as_of: date,
        months: Sequence[Period],
        timing: Mapping[str, StageTiming] | None = None,
    ) -> Landing:
        deals = len(pipeline.amount)
        n_months = len(months)
        slips = np.asarray(slips if len(slips) else [0], dtype=np.int64)
        # every deal's month for every distinct slippage value (−1: outside the horizon), and the part
        # of the sorted slippage sample that leaves the deal still open today (slip ≥ days past due)
        slip_values, slip_counts = np.unique(slips, return_counts=True)
        sorted_slips = np.sort(slips)
        landing_table = month_indices(pipeline.expected_close, slip_values, as_of, months)
        offsets = np.fromiter(((as_of - day).days for day in pipeline.expected_close), dtype=np.int64, count=deals)
        first_draw = np.searchsorted(sorted_slips, offsets, side="left")  # index of the first slip ≥ offset
        possible = first_draw < len(sorted_slips)  # False: past due beyond every slip in the history
        shares = np.zeros((deals, n_months))
        if deals:
            allowed = slip_values[None, :] >= offsets[:, None]  # deals × distinct slips
            weights = allowed * slip_counts[None, :].astype(np.float64)
            totals_w = weights.sum(axis=1)
            weights = np.divide(weights, totals_w[:, None], out=np.zeros_like(weights), where=totals_w[:, None] > 0)
            for m in range(n_months):
                shares[:, m] = ((landing_table == m) * weights).sum(axis=1)
        timed = np.zeros(deals, dtype=bool)
        low = np.zeros(deals, dtype=np.int64)
        high = np.zeros(deals, dtype=np.int64)
        parts: list[IntArray] = []
        stages = np.array(list(pipeline.stage) if len(pipeline.stage) == deals else [""] * deals, dtype=object)
        start = 0
        for stage, found in (timing or {}).items():
            members = np.flatnonzero((stages == stage) & possible)
            if not len(members) or not len(found):
                continue
            low[members], high[members] = found.cohorts(-offsets[members])
            low[members] += start
            high[members] += start
            timed[members] = True
            parts.append(month_indices([as_of], found.until_close, as_of, months)[0])
            start += len(found)
        point_month = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if timed.any():
            one_hot = (point_month[:, None] == np.arange(n_months)[None, :]).astype(np.float64)
            cumulative = np.vstack([np.zeros((1, n_months)), np.cumsum(one_hot, axis=0)])
            size = (high[timed] - low[timed]).astype(np.float64)
            shares[timed] = (cumulative[high[timed]] - cumulative[low[timed]]) / size[:, None]
        return cls(
            shares=shares,
            possible=possible,
            landing_table=landing_table,
            column_of_sorted=np.repeat(np.arange(len(slip_values)), slip_counts),
            first_draw=first_draw,
            slip_count=len(sorted_slips),
            timed=timed,
            low=low,
            high=high,
            point_month=point_month,
        )

    def draw(self, rng: np.random.Generator, size: int) -> IntArray:
        """simulations × deals: the month each deal lands in, if won (−1: outside the horizon)."""
        deals = len(self.possible)
        # a uniform draw among the slips ≥ the deal's days past due
        room = np.maximum(self.slip_count - self.first_draw, 1)
        drawn = np.minimum(
            self.first_draw[None, :] + (rng.random((size, deals)) * room[None, :]).astype(np.int64),
            self.slip_count - 1,
        )
        landed = self.landing_table[np.arange(deals)[None, :], self.column_of_sorted[drawn]]
        if self.timed.any():
            columns = np.flatnonzero(self.timed)
            width = self.high[columns] - self.low[columns]
            picked = self.low[columns][None, :] + (rng.random((size, len(columns))) * width[None, :]).astype(np.int64)
            landed[:, columns] = self.point_month[picked]
        return landed


def new_business_rates(history: History, as_of: date, months: Sequence[Period]) -> FloatArray:
    """Expected number of new wins (deals not open today) per horizon month: the daily won-deal rate
    times, summed over the month's remaining days, the share of cycles no longer than the days left;
    times the month's trend factor when the history has one (:mod:`closeloop.forecasting.trend`)."""
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
    if history.growth is not None and len(history.growth.factor) == len(months):
        rates = rates * history.growth.factor
    return rates


#: a simulation's trend draw never scales a month's run-rate below this share of its expected factor
TREND_FLOOR = 0.1


def trend_draws(history: History, rng: np.random.Generator, size: int, n_months: int) -> FloatArray | float:
    """simulations × months: each simulation's multiplier of the expected run-rate for the trend's
    uncertainty (one normal draw per simulation, shared by its months, scaled by each month's spread
    ÷ factor; at least ``TREND_FLOOR``); 1.0 without a trend or spread."""
    found = history.growth
    if found is None or len(found.factor) != n_months or not np.any(found.spread > 0):
        return 1.0
    shift = rng.standard_normal((size, 1)) * (found.spread / found.factor)[None, :]
    return np.maximum(1.0 + shift, TREND_FLOOR)


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
    timing: Mapping[str, StageTiming] | None = None,
    probability_draws: FloatArray | None = None,
) -> dict[tuple[str, str, str, int | None], Cell]:
    """Expected value, 80 % interval and run-rate per (granularity, period, dimension, key). With
    ``timing``, a deal at a stage it holds lands by that stage's learned timing instead of the
    slippage of all won deals (:class:`Landing`). With ``probability_draws`` (replicates × deals: the
    win probabilities under bootstrap replicates of the history), simulation ``i`` decides the
    outcomes with replicate ``i mod replicates``, so the interval carries the uncertainty of the
    learned rates; the expected value stays that of ``pipeline.probability``."""
    months, quarters = horizon(as_of)
    rng = np.random.default_rng(seed)
    n_months = len(months)
    slips = np.asarray(slips if len(slips) else [0], dtype=np.int64)
    deals = len(pipeline.amount)
    amount = np.asarray(pipeline.amount, dtype=np.float64)
    probability = np.clip(np.asarray(pipeline.probability, dtype=np.float64), 0.0, 1.0)
    rates = new_business_rates(history, as_of, months)
    dispersion = run_rate_dispersion(history)
    quarter_of_month = np.array(
        [
            next(q for q, quarter in enumerate(quarters) if quarter.start <= month.start < quarter.end)
            for month in months
        ]
    )

    placement = Landing.of(pipeline, slips, as_of, months, timing)
    shares, possible = placement.shares, placement.possible
    stages = list(pipeline.stage) if len(pipeline.stage) == deals else [""] * deals
    in_commit = np.array([stage in COMMIT_STAGES for stage in stages], dtype=bool)
    in_best = np.array([stage in BEST_CASE_STAGES for stage in stages], dtype=bool)
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
            chances = (
                probability[None, :]
                if probability_draws is None or not len(probability_draws)
                else np.clip(probability_draws[np.arange(done, done + size) % len(probability_draws)], 0.0, 1.0)
            )
            won = (rng.random((size, deals)) < chances) & possible[None, :]
            landed = placement.draw(rng, size)
            counted = won & (landed >= 0)
            sims, columns = np.nonzero(counted)
            for dimension in DIMENSIONS:
                deal_group, levels = groups[dimension][0], groups[dimension][1]
                flat = ((sims * n_months + landed[sims, columns]) * len(levels) + deal_group[columns]).astype(np.int64)
                totals[dimension][done : done + size] += np.bincount(
                    flat, weights=amount[columns], minlength=size * n_months * len(levels)
                ).reshape(size, n_months, len(levels))
        if len(history.amount) and rates.sum() > 0:
            # the rate itself is uncertain: estimated from len(history) deals (shared by the months of
            # a simulation), and it varies from month to month beyond Poisson (dispersion)
            level = rng.gamma(len(history.amount), 1.0 / len(history.amount), size=(size, 1))
            monthly = rng.gamma(1.0 / dispersion, dispersion, size=(size, n_months)) if dispersion > 0 else 1.0
            trend = trend_draws(history, rng, size, n_months)
            arrivals = rng.poisson(rates[None, :] * level * monthly * trend).astype(np.int64)
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
        # exact means and the categories per month and group, all from the same landing shares
        pipeline_mean = np.zeros((n_months, len(levels)))
        category = {name: np.zeros((n_months, len(levels))) for name in ("commit", "best_case", "pipeline")}
        landing = np.zeros((n_months, len(levels)), dtype=np.int64)
        if deals:
            weighted = shares * (amount * probability)[:, None]  # deals × months
            spread = shares * amount[:, None]
            for g in range(len(levels)):
                member = deal_group == g
                pipeline_mean[:, g] = weighted[member].sum(axis=0)
                category["pipeline"][:, g] = spread[member].sum(axis=0)
                category["best_case"][:, g] = spread[member & in_best].sum(axis=0)
                category["commit"][:, g] = spread[member & in_commit].sum(axis=0)
                landing[:, g] = (shares[member] > 0).sum(axis=0)
        run_mean = np.zeros((n_months, len(levels)))
        if len(history.amount):
            per_group = np.bincount(new_group, weights=history_mean, minlength=len(levels)) / len(history.amount)
            run_mean = rates[:, None] * per_group[None, :]
        for g, key in enumerate(levels):
            for m, month in enumerate(months):
                cells[("month", month.label, dimension, key)] = _cell(
                    sims_total[:, m, g],
                    float(pipeline_mean[m, g] + run_mean[m, g]),
                    float(run_mean[m, g]),
                    {name: float(values[m, g]) for name, values in category.items()},
                    int(landing[m, g]),
                )
            for q, quarter in enumerate(quarters):
                in_quarter = quarter_of_month == q
                # a deal counts once in a quarter, whichever of its months it may land in
                members = deal_group == g
                quarter_deals = int((shares[members][:, in_quarter].sum(axis=1) > 0).sum()) if deals else 0
                cells[("quarter", quarter.label, dimension, key)] = _cell(
                    sims_total[:, in_quarter, g].sum(axis=1),
                    float(pipeline_mean[in_quarter, g].sum() + run_mean[in_quarter, g].sum()),
                    float(run_mean[in_quarter, g].sum()),
                    {name: float(values[in_quarter, g].sum()) for name, values in category.items()},
                    quarter_deals,
                )
    return cells


def _cell(values: FloatArray, expected: float, run_rate: float, categories: dict[str, float], deals: int) -> Cell:
    """A cell from its simulated totals; the interval is widened to take in the exact mean when a
    skewed distribution puts the mean outside the 10th–90th percentiles (it then covers more)."""
    low, high = float(np.percentile(values, 10)), float(np.percentile(values, 90))
    return Cell(
        expected=expected,
        low=min(low, expected),
        high=max(high, expected),
        run_rate=run_rate,
        open_deals=deals,
        **categories,
    )


def period_share(expected_close: date, slips: Sequence[int], as_of: date, period: Period) -> float:
    """The share of a deal's conditional slippage draws — those that leave it still open on
    ``as_of`` (slip ≥ days past due) — that put it in ``period``; 0 when none does (the deal is past
    due beyond the history). Counted on the sorted draws with bisection — pages explain hundreds of
    deals against hundreds of draws."""
    sample = sorted(slips) if slips else [0]
    overdue = (as_of - expected_close).days  # slips below this would have closed the deal already
    first = bisect_left(sample, overdue)
    if first == len(sample):
        return 0.0
    low = max(overdue, (period.start - expected_close).days)
    high = (period.end - expected_close).days
    inside = bisect_left(sample, high) - bisect_left(sample, low) if high > low else 0
    return inside / (len(sample) - first)


def deal_share(
    stage: str,
    expected_close: date,
    slips: Sequence[int],
    as_of: date,
    period: Period,
    timing: Mapping[str, StageTiming] | None = None,
) -> float:
    """A deal's share of landing in ``period``, as the simulation lands it: by its stage's timing when
    ``timing`` holds the stage (the share of its cohort's points closing in the period), else by the
    slippage of all won deals (:func:`period_share`); 0 for a deal past due beyond the history."""
    found = (timing or {}).get(stage)
    if found is None or not len(found) or beyond_history(expected_close, list(slips), as_of):
        return period_share(expected_close, slips, as_of, period)
    low, high = found.cohorts([(expected_close - as_of).days])
    closes = found.until_close[int(low[0]) : int(high[0])]
    first, last = (period.start - as_of).days, (period.end - as_of).days
    # a point closing before the snapshot's day lands on it (as the simulation clamps it)
    landing = np.maximum(closes, 0)
    return float(((landing >= first) & (landing < last)).sum() / len(closes))


def beyond_history(expected_close: date, slips: Sequence[int], as_of: date) -> bool:
    """Past due by more days than any won deal in the history slipped: no learned slippage applies."""
    return (as_of - expected_close).days > max(slips or [0])


def periods_by_label(as_of: date) -> dict[str, Period]:
    months, quarters = horizon(as_of)
    return {period.label: period for period in (*months, *quarters)}


def as_jsonable(cells: dict[tuple[str, str, str, int | None], Cell]) -> list[dict[str, Any]]:
    return [
        {"granularity": g, "period": p, "dimension": d, "key": k, **vars(cell)} for (g, p, d, k), cell in cells.items()
    ]
