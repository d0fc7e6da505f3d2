"""Win probability by stage and time in stage, counting the deals that never close (issue #5 item 2,
tenth session).

:mod:`closeloop.forecasting.dwell` learns a stage's win rate from the **closed** deals that sat in the
stage at least as long as an open deal has. It cannot see the deals that never close: a deal that
stalls in negotiation and is neither won nor marked lost never enters that history, so the rate for
"30+ days in negotiation" came only from the few long stays that did close — 16 % where none of the
demo's such deals was won. On any day the pipeline holds those stalled deals; the forecast must
know how many of the deals that were once where an open deal is went on to win *within a time that
matters*, counting the ones that are still open as what they are: not (yet) won.

That is a **competing-risks** question with censoring. For a stage and ``d`` days in it, the cohort
is every stay of the organization's deals in that stage that lasted at least ``d`` days — closed
deals, deals still open at the cut, deals that moved on and are still open — each followed from the
moment it had sat ``d`` days (its *landmark*) to the deal's outcome: won, lost, or still open at the
cut (*censored*: what became of it is not known yet). The win probability is the **Aalen–Johansen**
cumulative incidence of winning within ``HORIZON_DAYS`` of the landmark: at each outcome in time
order, the share of the cohort still at risk (neither won, lost nor censored before) that wins there,
times the share that had neither won nor lost until then. A deal censored early leaves the risk set
without counting either way (its follow-up was too short to say), a stall followed for a year counts
as a year of not winning. Without censoring the estimate is the plain share won within the horizon.

The landmark is the largest of ``LANDMARKS`` not above ``d`` whose cohort holds ``MIN_COHORT`` stays
(the grid keeps the number of cohorts small so that bootstrap replicates are cheap). Each landmark's
estimate is smoothed with ``PRIOR_DEALS`` pseudo-deals toward the previous landmark's (landmark 0's
toward one half with one pseudo-deal each way), the cohort weighing as many deals as it holds
evidence for (:func:`evidence`: a deal still open counts for the share of the horizon it has been
followed), so a small cohort of long stays leans on the stays just shorter. A deal that visited a
stage twice counts its longest stay. Learned from the organization's own deals; for a snapshot of a
past day, from the stage history up to the end of that day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.clock import as_utc
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.scope import tenant_clause

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: the outcomes of a stay's deal: still open at the cut (censored), won, lost
OPEN, WON, LOST = 0, 1, 2
#: the win probability is that of winning within this many days of the landmark
HORIZON_DAYS = 365.0
#: the days in stage a cohort is followed from (an open deal uses the largest not above its own):
#: every day for a month, then 10 % apart (up to about three years)
LANDMARKS: tuple[float, ...] = tuple(float(day) for day in range(31)) + tuple(
    float(round(30 * 1.1**step)) for step in range(1, 38)
)
#: a cohort needs at least this many stays to speak for a deal that has sat this long
MIN_COHORT = 10
#: pseudo-deals at the stage's overall estimate added to a cohort (shrinks small cohorts toward it)
PRIOR_DEALS = 5
SECONDS_PER_DAY = 86_400.0


def incidence(
    times: Sequence[float] | FloatArray,
    outcomes: Sequence[int] | IntArray,
    *,
    horizon: float = HORIZON_DAYS,
    weights: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Aalen–Johansen cumulative incidence of winning and of losing by ``horizon`` days, from each
    subject's days to its outcome (``WON``, ``LOST``) or to its censoring (``OPEN``). With
    ``weights`` (replicates × subjects: how often each subject counts), one estimate per replicate;
    without, one estimate (arrays of length one). Subjects are taken one at a time in time order
    (outcomes before censorings at the same time), which gives the same product as grouping ties."""
    time = np.asarray(times, dtype=np.float64)
    outcome = np.asarray(outcomes, dtype=np.int64)
    counted = np.ones((1, len(time))) if weights is None else np.asarray(weights, dtype=np.float64)
    if not len(time):
        return np.zeros(len(counted)), np.zeros(len(counted))
    order = np.lexsort((outcome == OPEN, time))
    time, outcome, counted = time[order], outcome[order], counted[:, order]
    at_risk = np.cumsum(counted[:, ::-1], axis=1)[:, ::-1]
    ended = (outcome != OPEN) & (time <= horizon)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, counted * ended[None, :] / at_risk, 0.0)
    # the share neither won nor lost just before each subject's time
    before = np.cumprod(np.hstack([np.ones((len(counted), 1)), 1.0 - hazard[:, :-1]]), axis=1)
    step = before * hazard
    return step[:, outcome == WON].sum(axis=1), step[:, outcome == LOST].sum(axis=1)


@dataclass(frozen=True)
class StageStays:
    """The stays of the organization's deals in one stage, sorted by length: how many days each lasted
    (to the cut for a stay still going on), the days from its start to the deal's outcome or to the
    cut, and that outcome (``OPEN`` when the deal was still open at the cut)."""

    length: tuple[float, ...]
    until_end: tuple[float, ...]
    outcome: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.length)

    def landmarks(self) -> list[float]:
        """The landmarks with a cohort of at least ``MIN_COHORT`` stays (at least landmark 0)."""
        if len(self) < MIN_COHORT:
            return [0.0]
        longest = self.length[len(self) - MIN_COHORT]
        return [landmark for landmark in LANDMARKS if landmark <= longest] or [0.0]

    def landmark(self, days_in_stage: float) -> float:
        """The days in stage the cohort of a deal ``days_in_stage`` days in the stage is followed from:
        the largest landmark not above it whose cohort holds ``MIN_COHORT`` stays."""
        usable = self.landmarks()
        return usable[max(bisect_right(usable, max(days_in_stage, 0.0)) - 1, 0)]

    def cohort(self, landmark: float) -> tuple[int, FloatArray, IntArray]:
        """The first (sorted) stay of the cohort followed from ``landmark`` days, and the cohort's
        days from the landmark to the outcome or the cut, and outcomes."""
        start = bisect_left(self.length, landmark)
        return start, self._until_end[start:] - landmark, self._outcome[start:]

    @cached_property
    def _until_end(self) -> FloatArray:
        return np.asarray(self.until_end, dtype=np.float64)

    @cached_property
    def _outcome(self) -> IntArray:
        return np.asarray(self.outcome, dtype=np.int64)

    def _chain(self, wanted: set[float], weights: FloatArray) -> dict[float, FloatArray]:
        """Each landmark in ``wanted``'s estimate per replicate (row of ``weights``): the cohort's
        incidence smoothed with ``PRIOR_DEALS`` pseudo-deals toward the previous landmark's estimate
        (landmark 0's toward one half with one pseudo-deal each way), so that a small cohort of long
        stays leans on the ones just shorter, not on the stage's overall rate. The cohort counts as
        many deals as it holds evidence for (:func:`evidence`)."""
        found: dict[float, FloatArray] = {}
        previous: FloatArray | None = None
        last = max(wanted)
        for landmark in self.landmarks():
            if landmark > last:
                break
            start, times, outcomes = self.cohort(landmark)
            part = weights[:, start:]
            won, _ = incidence(times, outcomes, weights=part)
            members = (part * evidence(times, outcomes)[None, :]).sum(axis=1)
            if previous is None:
                previous = (members * won + 1) / (members + 2)
            else:
                previous = (members * won + PRIOR_DEALS * previous) / (members + PRIOR_DEALS)
            if landmark in wanted:
                found[landmark] = previous
        return found

    def win_probability(self, days_in_stage: float) -> float:
        """The probability that a deal ``days_in_stage`` days in the stage is won within the horizon."""
        return float(self.resampled([days_in_stage], np.ones((1, len(self))))[0, 0])

    def decided_probability(self, days_in_stage: float) -> float:
        """The probability that a deal ``days_in_stage`` days in the stage is won *or lost* within the
        horizon — the Aalen–Johansen incidence of either outcome in its landmark's cohort, the deals
        still open censored (1.0 without stays: nothing says a deal may stall)."""
        if not len(self):
            return 1.0
        _, times, outcomes = self.cohort(self.landmark(days_in_stage))
        if not len(times):
            return 1.0
        won, lost = incidence(times, outcomes)
        return float(min(won[0] + lost[0], 1.0))

    def resampled(self, days_in_stage: Sequence[float], weights: FloatArray) -> FloatArray:
        """:meth:`win_probability` for each of ``days_in_stage``, once per row of ``weights``
        (replicates × stays, in the sorted order: how often each stay counts in a bootstrap replicate),
        the cohorts kept as the history defines them. Rows of ones give :meth:`win_probability`."""
        result = np.full((len(weights), len(days_in_stage)), 0.5)
        if not len(days_in_stage):
            return result
        landmarks = [self.landmark(days) for days in days_in_stage]
        estimates = self._chain(set(landmarks), np.asarray(weights, dtype=np.float64))
        for index, landmark in enumerate(landmarks):
            result[:, index] = estimates[landmark]
        return result


def rates(history: dict[Stage, StageStays], stages: Sequence[str], days_in_stage: Sequence[float]) -> list[float]:
    """Each deal's :meth:`StageStays.win_probability`, the deals of a stage estimated together."""
    return [float(value) for value in bootstrap_rates(history, stages, days_in_stage, replicates=0, seed=0)[0]]


def decided(history: dict[Stage, StageStays], stages: Sequence[str], days_in_stage: Sequence[float]) -> list[float]:
    """Each deal's probability of being decided (won or lost) within the horizon for its stage and
    days in it (:meth:`StageStays.decided_probability`); 1.0 for a stage without stays."""
    result = []
    for stage, days in zip(stages, days_in_stage, strict=True):
        found = history.get(Stage(stage)) if stage in {item.value for item in Stage} else None
        result.append(1.0 if found is None else found.decided_probability(max(days, 0.0)))
    return result


def evidence(times: FloatArray, outcomes: IntArray) -> FloatArray:
    """How much each member of a cohort says about a win within the horizon: a decided deal one, a
    deal still open the share of the horizon it has been followed (a deal opened yesterday says
    nothing yet; one stalled for the whole horizon says as much as a lost one)."""
    return np.where(outcomes == OPEN, np.clip(times / HORIZON_DAYS, 0.0, 1.0), 1.0)


def bootstrap_rates(
    history: dict[Stage, StageStays],
    stages: Sequence[str],
    days_in_stage: Sequence[float],
    *,
    replicates: int,
    seed: int,
) -> FloatArray:
    """replicates × deals: each deal's :meth:`StageStays.win_probability` under ``replicates`` Poisson
    bootstrap replicates of the stays (each stay counted a Poisson(1) number of times); deals of one
    stage share each replicate (their rates err together, as they would). With no ``replicates``, one
    row: the estimates from the stays as they are."""
    rng = np.random.default_rng(seed)
    result = np.full((max(replicates, 1), len(stages)), 0.5)
    wanted = np.array(stages, dtype=object)
    for stage, found in history.items():
        members = np.flatnonzero(wanted == stage.value)
        if not len(members):
            continue
        weights = (
            rng.poisson(1.0, size=(replicates, len(found))).astype(np.float64)
            if replicates
            else np.ones((1, len(found)))
        )
        result[:, members] = found.resampled([days_in_stage[int(i)] for i in members], weights)
    return result


def build(
    changes: Sequence[tuple[int, str | None, str, datetime]],
    deals: Sequence[tuple[int, datetime, datetime | None, str, datetime | None]],
    cut: datetime,
) -> dict[Stage, StageStays]:
    """The stays per open stage from the stage changes made before ``cut`` (``(deal, from, to, when)``)
    and the deals opened before it (``(deal, opened_at, closed_at, stage now, stage changed at)``). A
    deal's outcome is its stage now if it closed before the cut, else ``OPEN`` (censored at the cut).
    A deal's first stay begins when it was opened unless its first change is an entry (``from``
    None); a deal with no recorded change (imported as it stood) stands in its stage now, if open,
    since its stage last changed (when that was before the cut; else since it was opened)."""
    open_values = {stage.value for stage in OPEN_STAGES}
    by_deal: dict[int, list[tuple[datetime, str | None, str]]] = {}
    for deal_id, moved_from, moved_to, when in changes:
        if when < cut:
            by_deal.setdefault(deal_id, []).append((when, moved_from, moved_to))
    longest: dict[tuple[int, str], tuple[float, float, int]] = {}
    for deal_id, opened, closed, stage_now, stage_changed in deals:
        if opened >= cut:
            continue
        finished = closed is not None and closed < cut and stage_now in (Stage.WON.value, Stage.LOST.value)
        end = closed if finished and closed is not None else cut
        outcome = (WON if stage_now == Stage.WON.value else LOST) if finished else OPEN
        moves = sorted(by_deal.get(deal_id, []), key=lambda move: move[0])
        current: str | None
        since = opened
        if not moves:
            current = stage_now if stage_now in open_values and not finished else None
            if stage_changed is not None and opened <= stage_changed < cut:
                since = stage_changed
        else:
            current = moves[0][1] if moves[0][1] is not None else None
        stays: list[tuple[str, datetime, datetime]] = []
        for when, _, moved_to in moves:
            if current in open_values and current is not None:
                stays.append((current, since, when))
            current, since = moved_to, when
        if current in open_values and current is not None:
            stays.append((current, since, end))
        for stage, began, left in stays:
            days = max((left - began).total_seconds(), 0.0) / SECONDS_PER_DAY
            until_end = max((end - began).total_seconds(), 0.0) / SECONDS_PER_DAY
            key = (deal_id, stage)
            if key not in longest or longest[key][0] < days:
                longest[key] = (days, until_end, outcome)
    by_stage: dict[Stage, list[tuple[float, float, int]]] = {stage: [] for stage in OPEN_STAGES}
    for (_, name), stay in longest.items():
        by_stage[Stage(name)].append(stay)
    result = {}
    for stage, found in by_stage.items():
        found.sort()
        result[stage] = StageStays(
            length=tuple(item[0] for item in found),
            until_end=tuple(item[1] for item in found),
            outcome=tuple(item[2] for item in found),
        )
    return result


def stays(session: Session, organization_id: int, *, cut: datetime) -> dict[Stage, StageStays]:
    """Per open stage, the stays of the organization's deals opened before ``cut``, as they stood at
    ``cut`` (:func:`build`). Two queries: the deals, and their stage changes before the cut."""
    deals = [
        (
            row.id,
            as_utc(row.opened_at),
            as_utc(row.closed_at) if row.closed_at else None,
            str(row.stage),
            as_utc(row.stage_changed_at) if row.stage_changed_at else None,
        )
        for row in session.execute(
            select(
                Opportunity.id,
                Opportunity.opened_at,
                Opportunity.closed_at,
                Opportunity.stage,
                Opportunity.stage_changed_at,
            ).where(tenant_clause(organization_id, Opportunity), Opportunity.opened_at < cut)
        )
    ]
    changes = [
        (row.opportunity_id, str(row.from_stage) if row.from_stage else None, str(row.to_stage), as_utc(row.changed_at))
        for row in session.execute(
            select(
                StageChange.opportunity_id, StageChange.from_stage, StageChange.to_stage, StageChange.changed_at
            ).where(tenant_clause(organization_id, StageChange), StageChange.changed_at < cut)
        )
    ]
    return build(changes, deals, as_utc(cut))
