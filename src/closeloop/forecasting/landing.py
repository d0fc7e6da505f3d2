"""When an open deal that will be won closes, learned by stage (issue #5 item 2, ninth session).

The simulation used to move every open deal's expected close date by a slippage drawn from all won
deals, whatever stage the deal stood in. A deal still in qualification whose expected close falls
in the current month cannot pass two more stages in the days left, yet it got the same share of the
month as a deal in negotiation: on the demo's backfilled snapshots, deals at prospecting or
qualification brought 289 M of expected value to their first month and 88 M landed.

So the timing is learned **per stage**, from the won deals' stage history: each stay of a won deal
in a stage gives points at regular moments inside it (one per ``STEP_DAYS``, at a deterministic phase
per deal — so a stay is represented in proportion to its length, as the open pipeline on any day
holds deals), and each point records, as of that moment, the days until the deal's expected close
(``until_expected``) and the days until it actually closed (``until_close``). An open deal at that
stage whose expected close is ``d`` days away lands ``until_close`` days from the snapshot, drawn
from its **cohort**: the points of its stage whose ``until_expected`` lies within ``h`` days of
``d``, ``h`` the smallest radius holding ``NEIGHBOURS`` points (ties included). A stage with fewer
than ``MIN_POINTS`` points keeps the slippage of all won deals.

The expected close date is the deal's current one (the demo never re-dates closed deals; on real
data a re-dated deal's points use its last date). Learned from the deals closed by the end of the
snapshot's day, over the slippage window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.clock import as_utc
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.scope import tenant_clause

IntArray = npt.NDArray[np.int64]

#: one point per this many days of a stay
STEP_DAYS = 2.0
#: the cohort of an open deal: at least this many points of its stage nearest in days to expected close
NEIGHBOURS = 100
#: a stage with fewer points keeps the slippage of all won deals
MIN_POINTS = 30
#: only points at least this many days before the snapshot count: a point closer to it has seen only
#: the deals that closed quickly after it (the others are still open), which would pull landing early
SETTLED_DAYS = 180
#: at most this many points per stage are stored with a snapshot (a seeded sample)
STORED_POINTS = 2000
#: the golden ratio's conjugate: a deal's phase inside its stays, spread evenly over [0, 1)
_SPREAD = 0.6180339887498949


@dataclass(frozen=True)
class StageTiming:
    """Won deals' points in one stage, sorted by ``until_expected``; ``until_close`` aligned."""

    until_expected: IntArray
    until_close: IntArray

    def __len__(self) -> int:
        return len(self.until_expected)

    @classmethod
    def of(cls, pairs: Sequence[tuple[int, int]]) -> StageTiming:
        ordered = sorted(pairs)
        return cls(
            until_expected=np.array([pair[0] for pair in ordered], dtype=np.int64),
            until_close=np.array([pair[1] for pair in ordered], dtype=np.int64),
        )

    def cohorts(self, until_expected: Sequence[int] | IntArray) -> tuple[IntArray, IntArray]:
        """For each open deal ``d`` days from its expected close, the range ``[low, high)`` of this
        stage's points in its cohort: those within ``h`` of ``d``, ``h`` the distance of its
        ``NEIGHBOURS``-th nearest point (every point at that distance included)."""
        wanted = np.asarray(until_expected, dtype=np.int64)
        points = self.until_expected
        count = len(points)
        if count <= NEIGHBOURS:
            return np.zeros(len(wanted), dtype=np.int64), np.full(len(wanted), count, dtype=np.int64)
        position = np.searchsorted(points, wanted)
        # the NEIGHBOURS nearest lie among the NEIGHBOURS points on either side of the position
        window = position[:, None] + np.arange(-NEIGHBOURS, NEIGHBOURS)[None, :]
        valid = (window >= 0) & (window < count)
        near = np.abs(points[np.clip(window, 0, count - 1)] - wanted[:, None])
        distance = np.where(valid, near, np.iinfo(np.int64).max)
        radius = np.partition(distance, NEIGHBOURS - 1, axis=1)[:, NEIGHBOURS - 1]
        low = np.searchsorted(points, wanted - radius, side="left")
        high = np.searchsorted(points, wanted + radius, side="right")
        return low.astype(np.int64), high.astype(np.int64)


def points_of_stay(
    deal_id: int, entered: datetime, left: datetime, expected_close: date, closed: date
) -> list[tuple[int, int]]:
    """(days until expected close, days until close) at moments ``STEP_DAYS`` apart inside one stay,
    the first at a fraction of a step set by the deal (so a stay shorter than a step gives a point
    with a chance in proportion to its length)."""
    phase = (deal_id * _SPREAD) % 1.0
    step = timedelta(days=STEP_DAYS)
    moment = entered + step * phase
    points = []
    while moment < left:
        day = moment.date()
        points.append(((expected_close - day).days, max((closed - day).days, 0)))
        moment += step
    return points


def timing(
    session: Session, organization_id: int, *, closed_from: datetime, closed_before: datetime
) -> dict[str, StageTiming]:
    """Per open stage, the points of the organization's won deals closed in ``[closed_from,
    closed_before)`` (stays read from the stage history's ``duration_seconds``). One query."""
    rows = session.execute(
        select(
            StageChange.opportunity_id,
            StageChange.from_stage,
            StageChange.changed_at,
            StageChange.duration_seconds,
            Opportunity.expected_close_date,
            Opportunity.closed_at,
        )
        .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
        .where(
            tenant_clause(organization_id, StageChange),
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.expected_close_date.is_not(None),
            Opportunity.closed_at >= closed_from,
            Opportunity.closed_at < closed_before,
            StageChange.from_stage.in_([stage.value for stage in OPEN_STAGES]),
            StageChange.duration_seconds.is_not(None),
        )
    )
    pairs: dict[str, list[tuple[int, int]]] = {stage.value: [] for stage in OPEN_STAGES}
    settled = closed_before - timedelta(days=SETTLED_DAYS)
    for deal_id, stage, left, seconds, expected, closed in rows:
        if expected is None or closed is None:
            continue
        left = as_utc(left)
        entered = left - timedelta(seconds=max(int(seconds or 0), 0))
        # the part of the stay inside the window and before the settled line: before the window, only
        # the deals that closed late enough to be in it would be seen
        found = points_of_stay(deal_id, max(entered, closed_from), min(left, settled), expected, as_utc(closed).date())
        pairs[str(stage)].extend(found)
    return {stage: StageTiming.of(found) for stage, found in pairs.items()}


def usable(timings: Mapping[str, StageTiming]) -> dict[str, StageTiming]:
    """The stages with enough points to speak for themselves."""
    return {stage: found for stage, found in timings.items() if len(found) >= MIN_POINTS}


def sample(timings: Mapping[str, StageTiming], *, seed: int) -> dict[str, StageTiming]:
    """At most ``STORED_POINTS`` points per stage (seeded), for storing with a snapshot."""
    rng = np.random.default_rng(seed)
    result = {}
    for stage, found in timings.items():
        if len(found) > STORED_POINTS:
            picked = np.sort(rng.choice(len(found), size=STORED_POINTS, replace=False))
            found = StageTiming(found.until_expected[picked], found.until_close[picked])
        result[stage] = found
    return result


def as_details(timings: Mapping[str, StageTiming]) -> dict[str, list[list[int]]]:
    """JSON-ready: per stage, [until_expected, until_close] pairs."""
    return {
        stage: [[int(a), int(b)] for a, b in zip(found.until_expected, found.until_close, strict=True)]
        for stage, found in timings.items()
    }


def from_details(stored: Mapping[str, Sequence[Sequence[int]]] | None) -> dict[str, StageTiming]:
    """The inverse of :func:`as_details` (empty for a snapshot taken before stage timing existed)."""
    return {stage: StageTiming.of([(int(a), int(b)) for a, b in pairs]) for stage, pairs in (stored or {}).items()}
