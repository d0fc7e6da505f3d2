"""Stage win rates that know how long a deal has sat in its stage (issue #5 item 2).

Until a model is trained, an open deal's win probability is its stage's historical win rate. That
rate is the share of the closed deals that *passed through* the stage which were won — right for a
deal that has just entered the stage, wrong for the open pipeline as it stands on any day: deals
that will be lost linger in their last stage before someone marks them lost, so at any moment the
deals sitting in a stage are weighted by how long they sit, and the long-sitting ones are mostly
the doomed ones. Backfilled demo snapshots over-forecast every month by 14–45 % this way (the
stage rate said 80 % for deals in negotiation; 59–73 % of them were won).

So, for an open deal that has been in its stage ``d`` days, the **cohort** is the closed deals
whose stay in that stage lasted at least ``d`` days — the deals that were once where this one is.
Its win rate, smoothed toward the stage's overall rate with ``PRIOR_DEALS`` pseudo-deals, is the
deal's probability. When fewer than ``MIN_COHORT`` stays lasted that long, the cohort is the
``MIN_COHORT`` longest stays, ties included (the evidence runs out; the rate does not extrapolate
beyond it). A
stay is the time between entering the stage and leaving it (the stage history's
``duration_seconds``); a deal that visited a stage twice counts its longest stay. Like the
past-due adjustment (:mod:`closeloop.forecasting.past_due`), it is learned from the organization's
own closed deals only, and for a snapshot of a past day from the deals closed by then.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.scope import tenant_clause

#: a cohort needs at least this many closed deals to speak for a stay this long
MIN_COHORT = 10
#: pseudo-deals at the stage's overall win rate added to a cohort (shrinks small cohorts toward it)
PRIOR_DEALS = 5
SECONDS_PER_DAY = 86_400.0
FloatArray = npt.NDArray[np.float64]


def bootstrap_rates(
    history: dict[Stage, Stays], stages: Sequence[str], days_in_stage: Sequence[float], *, replicates: int, seed: int
) -> FloatArray:
    """replicates × deals: each deal's stage rate (:meth:`Stays.rate`) under ``replicates`` Poisson
    bootstrap replicates of the closed stays (each stay counted a Poisson(1) number of times), so the
    spread of a forecast includes how uncertain the learned rates are. Deals of one stage share
    each replicate (their rates err together, as they would)."""
    rng = np.random.default_rng(seed)
    result = np.zeros((replicates, len(stages)))
    wanted = np.array(stages, dtype=object)
    for stage, found in history.items():
        members = np.flatnonzero(wanted == stage.value)
        if not len(members):
            continue
        weights = rng.poisson(1.0, size=(replicates, len(found.days))).astype(np.float64)
        result[:, members] = found.resampled_rates([days_in_stage[int(i)] for i in members], weights)
    return result


@dataclass(frozen=True)
class Stays:
    """The closed deals that passed through one stage: days each stayed in it (sorted), and whether
    it was won, aligned."""

    days: tuple[float, ...]
    won: tuple[bool, ...]

    @property
    def base_rate(self) -> float:
        """The stage's overall win rate, Laplace-smoothed (one half with no history)."""
        return (sum(self.won) + 1) / (len(self.won) + 2)

    def cohort_start(self, days_in_stage: float) -> int:
        """The first of the (sorted) stays in the cohort of a deal ``days_in_stage`` days in the stage."""
        count = len(self.days)
        start = bisect_left(self.days, days_in_stage)
        if count - start < MIN_COHORT and count:
            # too few stayed this long: the MIN_COHORT longest stays, and every stay as long as the
            # shortest of them (ties are one cohort, whatever their outcome)
            start = bisect_left(self.days, self.days[max(count - MIN_COHORT, 0)])
        return start

    def rate(self, days_in_stage: float) -> float:
        """The win rate of the deals that stayed in the stage at least ``days_in_stage`` days."""
        cohort = self.won[self.cohort_start(days_in_stage) :]
        return (sum(cohort) + PRIOR_DEALS * self.base_rate) / (len(cohort) + PRIOR_DEALS)

    def resampled_rates(self, days_in_stage: Sequence[float], weights: FloatArray) -> FloatArray:
        """The rates of :meth:`rate` for each of ``days_in_stage``, once per row of ``weights``
        (replicates × stays: how often each closed stay counts in a bootstrap replicate of the
        history), the cohorts kept as the history defines them. Rows of ones give :meth:`rate`."""
        won = np.asarray(self.won, dtype=np.float64)
        # sums over the stays from each position to the end, per replicate (one column more: empty)
        counted = np.cumsum(weights[:, ::-1], axis=1)[:, ::-1]
        counted_won = np.cumsum((weights * won[None, :])[:, ::-1], axis=1)[:, ::-1]
        counted = np.hstack([counted, np.zeros((len(weights), 1))])
        counted_won = np.hstack([counted_won, np.zeros((len(weights), 1))])
        base = (counted_won[:, :1] + 1) / (counted[:, :1] + 2)
        starts = np.array([self.cohort_start(days) for days in days_in_stage], dtype=np.int64)
        return (counted_won[:, starts] + PRIOR_DEALS * base) / (counted[:, starts] + PRIOR_DEALS)


def stays(session: Session, organization_id: int, *, closed_before: datetime | None = None) -> dict[Stage, Stays]:
    """Per open stage, the stays of the organization's closed deals in it (of the deals closed before
    ``closed_before`` when given). One query over the stage history."""
    query = (
        select(StageChange.opportunity_id, StageChange.from_stage, StageChange.duration_seconds, Opportunity.stage)
        .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
        .where(
            tenant_clause(organization_id, StageChange),
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage.in_([Stage.WON.value, Stage.LOST.value]),
            StageChange.from_stage.in_([stage.value for stage in OPEN_STAGES]),
            StageChange.duration_seconds.is_not(None),
        )
    )
    if closed_before is not None:
        query = query.where(Opportunity.closed_at < closed_before)
    longest: dict[tuple[int, str], tuple[float, bool]] = {}
    for opportunity_id, left, seconds, outcome in session.execute(query):
        key = (opportunity_id, str(left))
        days = max(int(seconds or 0), 0) / SECONDS_PER_DAY
        if key not in longest or longest[key][0] < days:
            longest[key] = (days, str(outcome) == Stage.WON.value)
    by_stage: dict[Stage, list[tuple[float, bool]]] = {stage: [] for stage in OPEN_STAGES}
    for (_, name), stay in longest.items():
        by_stage[Stage(name)].append(stay)
    result = {}
    for stage, pairs in by_stage.items():
        pairs.sort()
        result[stage] = Stays(days=tuple(day for day, _ in pairs), won=tuple(won for _, won in pairs))
    return result
