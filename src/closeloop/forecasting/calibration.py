"""The bookings forecast's 80 % interval calibrated against the organization's own track record
(issue #5, eleventh session).

The simulation's interval (:mod:`closeloop.forecasting.simulation`) covers what the model knows it
does not know — each deal's outcome and timing, the learned rates, the run-rate's trend — and not
what it gets wrong: a month that swings more than independent deals do, a trend that lags growth.
Measured on the demo, the snapshot's own month fell inside it 71 % of the time, months further
ahead far less. The organization keeps every snapshot, and each finished period says how far its
forecast was off, so the interval is corrected by those errors — **split-conformal calibration**
(Vovk et al. 2005; for quantile intervals Romano, Patterson & Candès 2019, "Conformalized quantile
regression", with the score scaled by the interval's width as in Sesia & Candès 2020):

* **Pairs.** For a snapshot as of day *D*, every earlier snapshot's total row of a period that ended
  on or before *D* (``period_end ≤ D``: its bookings are all known; a period still running is never
  used) against what the organization booked in that period. One snapshot per calendar month —
  the one whose day of the month is nearest *D*'s (a daily task keeps ~30 near-identical forecasts
  of each month; they would count as one piece of evidence thirty times) — from the last
  ``WINDOW_MONTHS`` months. Pairs are grouped by granularity and **lead**: months (quarters) from
  the snapshot's month (quarter) to the period's — the forecast of a month three months out errs
  differently from this month's.
* **Scores.** With the *simulated* (uncalibrated) interval [lo, hi] of width w = hi − lo and the
  actual y: lower score (lo − y) ÷ w, upper score (y − hi) ÷ w — how far, in interval widths, the
  actual fell below the low end or above the high end (negative: inside, with room to spare).
* **Quantiles.** For each tail (10 % each side of an 80 % interval) the ⌈(n + 1)(1 − 0.1)⌉-th
  smallest of the n scores, q_lo and q_hi. That is finite only from n = 9 on (``MIN_PAIRS``): with
  fewer pairs no conformal bound exists and the interval stays as simulated, and says so.
* **Interval.** [lo − q_lo·w, hi + q_hi·w]: widened on the side the past actuals fell beyond, and
  narrowed where they never came near (a negative q) — so a forecast that keeps under-shooting has
  its interval *shifted* up, not only widened. It is then stretched to take in the expected value
  (the page's identity: the expected value lies inside its interval), and its low end never goes
  below what is already booked in the period.

If the forecast errors to come are exchangeable with the past ones, the calibrated interval covers
at least 80 % of them (the conformal guarantee, up to 1/(n + 1)); errors drift when the business
changes, which is why only recent months count. The expected value itself is not moved: it stays
the deal-by-deal sum that attribution splits, and the page shows the pairs' bias (``bias``: the mean
of (y − expected) ÷ expected) beside it.

Every dimension's rows use the total's quantiles for their granularity and lead, each scaled by its
own simulated width (an owner's interval is narrower or wider than the total's, and so is its
correction) — an assumption: owners and regions were not measured separately (too few pairs each).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.clock import as_utc
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot

#: the share of actuals each side of the interval may fall beyond (an 80 % interval)
TAIL = 0.10
#: the fewest pairs a lead needs: ⌈(n + 1)(1 − TAIL)⌉ ≤ n first holds at n = 9
MIN_PAIRS = 9
#: only snapshots taken in this many months before the as-of date are learned from (a year: errors drift
#: as the business changes; measured on the demo, 24 months widened every lead with no better coverage)
WINDOW_MONTHS = 12
#: how the interval was made, as the snapshot records it
CALIBRATED, SIMULATED = "split_conformal", "simulated"


@dataclass(frozen=True)
class Pair:
    """One past forecast of a finished period (total) and what was booked in it."""

    granularity: str
    lead: int
    period: str
    as_of: date
    expected: float
    low: float  # the simulated interval (before any calibration)
    high: float
    actual: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def scores(self) -> tuple[float, float]:
        """(lower, upper): how far below the low end and above the high end the actual fell, in widths."""
        return (self.low - self.actual) / self.width, (self.actual - self.high) / self.width


@dataclass(frozen=True)
class Adjustment:
    """The correction for one granularity and lead: the conformal quantiles of its pairs' scores
    (``None`` with fewer than ``MIN_PAIRS`` pairs — the interval then stays as simulated)."""

    granularity: str
    lead: int
    pairs: int
    lower: float | None
    upper: float | None
    #: the pairs' mean signed error (actual − expected) ÷ expected (None without pairs)
    bias: float | None

    @property
    def applied(self) -> bool:
        return self.lower is not None and self.upper is not None

    def apply(self, expected: float, low: float, high: float, *, floor: float = 0.0) -> tuple[float, float]:
        """The calibrated interval of a simulated [low, high] around ``expected``; ``floor``: the
        lowest the low end may go (what is already booked in the period)."""
        if self.lower is None or self.upper is None:
            return low, high
        width = high - low
        new_low, new_high = low - self.lower * width, high + self.upper * width
        if new_low > new_high:  # both ends pulled past each other: the narrowest honest interval is a point
            new_low = new_high = (new_low + new_high) / 2
        new_low, new_high = min(new_low, expected), max(new_high, expected)
        return max(new_low, min(floor, expected)), new_high

    def as_dict(self) -> dict[str, Any]:
        return {
            "granularity": self.granularity,
            "lead": self.lead,
            "pairs": self.pairs,
            "applied": self.applied,
            "lower": None if self.lower is None else round(self.lower, 4),
            "upper": None if self.upper is None else round(self.upper, 4),
            "bias": None if self.bias is None else round(self.bias, 4),
        }


def conformal_quantile(scores: Sequence[float], tail: float = TAIL) -> float | None:
    """The split-conformal quantile of ``scores``: the ⌈(n + 1)(1 − tail)⌉-th smallest, or ``None``
    when that rank exceeds n (too few scores for a finite bound)."""
    n = len(scores)
    rank = math.ceil((n + 1) * (1 - tail) - 1e-9)
    if n == 0 or rank > n:
        return None
    return sorted(scores)[rank - 1]


def learn(pairs: Iterable[Pair], granularity: str, lead: int) -> Adjustment:
    """The adjustment of ``granularity`` and ``lead`` from the pairs of that kind (pairs whose
    simulated interval has no width cannot be scaled and are left out)."""
    chosen = [pair for pair in pairs if pair.granularity == granularity and pair.lead == lead and pair.width > 0]
    lower = [pair.scores()[0] for pair in chosen]
    upper = [pair.scores()[1] for pair in chosen]
    signed = [(pair.actual - pair.expected) / pair.expected for pair in chosen if pair.expected > 0]
    low_q, high_q = conformal_quantile(lower), conformal_quantile(upper)
    if low_q is None or high_q is None or len(chosen) < MIN_PAIRS:
        low_q = high_q = None
    return Adjustment(
        granularity=granularity,
        lead=lead,
        pairs=len(chosen),
        lower=low_q,
        upper=high_q,
        bias=sum(signed) / len(signed) if signed else None,
    )


def lead_of(granularity: str, as_of: date, period_start: date) -> int:
    """Months (quarters) from the month (quarter) of ``as_of`` to the period starting ``period_start``."""
    months = (period_start.year - as_of.year) * 12 + period_start.month - as_of.month
    if granularity == "quarter":
        return (period_start.year - as_of.year) * 4 + (period_start.month - 1) // 3 - (as_of.month - 1) // 3
    return months


def simulated_key(granularity: str, period: str) -> str:
    return f"{granularity}:{period}"


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def won_by_month(session: Session, organization_id: int, first: date, end: date) -> dict[date, float]:
    """The won amount of each calendar month (keyed by its first day) of the deals closed from
    ``first`` to before ``end`` — what was booked, for the run-rate's history and the calibration."""
    booked: dict[date, float] = {}
    for closed, amount in session.execute(
        select(Opportunity.closed_at, Opportunity.amount).where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.amount.is_not(None),
            Opportunity.closed_at >= _start(first),
            Opportunity.closed_at < _start(end),
        )
    ):
        if closed is None or amount is None:
            continue
        month = as_utc(closed).date().replace(day=1)
        booked[month] = booked.get(month, 0.0) + float(amount)
    return booked


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def chosen_snapshots(found: Iterable[tuple[int, date]], as_of: date) -> list[tuple[int, date]]:
    """Of ``(id, as_of)`` snapshots taken before ``as_of`` within the window, one per calendar month:
    the one whose day of the month is nearest ``as_of``'s (the earlier on a tie, then the lower id)."""
    earliest = _month_index(as_of) - WINDOW_MONTHS
    best: dict[int, tuple[int, date]] = {}
    for snapshot_id, day in found:
        if day >= as_of or _month_index(day) < earliest:
            continue
        month = _month_index(day)
        rank = (abs(day.day - as_of.day), day, snapshot_id)
        held = best.get(month)
        if held is None or rank < (abs(held[1].day - as_of.day), held[1], held[0]):
            best[month] = (snapshot_id, day)
    return [best[month] for month in sorted(best)]


def past_pairs(session: Session, organization_id: int, as_of: date) -> list[Pair]:
    """The organization's own past forecasts of periods that ended by ``as_of`` (total rows of the
    snapshots :func:`chosen_snapshots` picks), each with its simulated interval and what was booked."""
    found = session.execute(
        select(BookingsSnapshot.id, BookingsSnapshot.as_of).where(
            tenant_clause(organization_id, BookingsSnapshot), BookingsSnapshot.as_of < as_of
        )
    )
    chosen = chosen_snapshots(((int(row[0]), row[1]) for row in found), as_of)
    if not chosen:
        return []
    days = dict(chosen)
    simulated: dict[int, dict[str, Any]] = {}
    for snapshot_id, details in session.execute(
        select(BookingsSnapshot.id, BookingsSnapshot.details).where(
            tenant_clause(organization_id, BookingsSnapshot), BookingsSnapshot.id.in_(list(days))
        )
    ):
        interval = (details or {}).get("interval") or {}
        simulated[snapshot_id] = interval.get("simulated") or {}
    rows = session.execute(
        select(
            BookingsForecastRow.snapshot_id,
            BookingsForecastRow.granularity,
            BookingsForecastRow.period,
            BookingsForecastRow.period_start,
            BookingsForecastRow.period_end,
            BookingsForecastRow.expected,
            BookingsForecastRow.low,
            BookingsForecastRow.high,
        ).where(
            tenant_clause(organization_id, BookingsForecastRow),
            BookingsForecastRow.snapshot_id.in_(list(days)),
            BookingsForecastRow.dimension == "total",
            BookingsForecastRow.period_end <= as_of,
        )
    ).all()
    if not rows:
        return []
    first = min(row.period_start for row in rows)
    booked = won_by_month(session, organization_id, first, as_of)
    pairs = []
    for row in rows:
        stored = simulated.get(row.snapshot_id, {}).get(simulated_key(row.granularity, row.period))
        # a snapshot from before calibration stored only its simulated interval, in the row itself
        low, high = (float(stored[0]), float(stored[1])) if stored else (float(row.low), float(row.high))
        actual = sum(value for month, value in booked.items() if row.period_start <= month < row.period_end)
        pairs.append(
            Pair(
                granularity=row.granularity,
                lead=lead_of(row.granularity, days[row.snapshot_id], row.period_start),
                period=row.period,
                as_of=days[row.snapshot_id],
                expected=float(row.expected),
                low=low,
                high=high,
                actual=actual,
            )
        )
    return pairs
