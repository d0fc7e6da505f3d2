"""Issue #5, tenth session: win probabilities that count the deals which never close (competing risks
with open deals censored), and a run-rate that follows the business's trend. Worked by hand on small
data; the trend on growing, flat, shrinking and short histories; and a snapshot that uses both."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy.orm import Session

from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.session import Database
from closeloop.forecasting import dwell, survival, trend
from closeloop.forecasting.bookings import OpenDeal, probabilities, take_snapshot
from closeloop.forecasting.simulation import History, Pipeline, horizon, new_business_rates, simulate
from closeloop.forecasting.survival import LOST, OPEN, WON, StageStays, incidence
from tests.factories import Tenant

AS_OF = date(2026, 11, 10)
CUT = datetime(2026, 11, 10, tzinfo=UTC)


# --- the Aalen–Johansen estimate -------------------------------------------------------------------


def test_incidence_worked_by_hand_with_a_censored_deal_between_outcomes() -> None:
    # five deals: won on day 1, still open when last seen on day 2, lost on day 3, won on day 4,
    # still open on day 5. Day 1: 1 of 5 at risk wins → won 1/5, 4/5 left undecided. Day 2: one
    # leaves the risk set unjudged. Day 3: 1 of the 3 at risk loses → lost 4/5 · 1/3 = 4/15, 8/15
    # left. Day 4: 1 of 2 wins → won 1/5 + 8/15 · 1/2 = 7/15; the last 4/15 is still open.
    won, lost = incidence([1, 2, 3, 4, 5], [WON, OPEN, LOST, WON, OPEN])
    assert won.tolist() == pytest.approx([7 / 15])
    assert lost.tolist() == pytest.approx([4 / 15])
    # within a horizon of 3 days the day-4 win does not count
    won, lost = incidence([1, 2, 3, 4, 5], [WON, OPEN, LOST, WON, OPEN], horizon=3)
    assert (won.tolist(), lost.tolist()) == (pytest.approx([1 / 5]), pytest.approx([4 / 15]))


def test_without_censoring_the_incidence_is_the_share_won_and_ties_count_once_each() -> None:
    won, lost = incidence([2, 2, 2, 7], [WON, LOST, WON, LOST])
    assert (won.tolist(), lost.tolist()) == (pytest.approx([0.5]), pytest.approx([0.5]))


def test_deals_opened_too_recently_to_be_decided_are_not_counted_as_lost() -> None:
    # ten deals won after 5 days; ten opened 2 days before the cut and still open: the plain share
    # won is one half, but nothing is known yet about the young ones — every deal followed 5 days won
    won, _ = incidence([5.0] * 10 + [2.0] * 10, [WON] * 10 + [OPEN] * 10)
    assert won.tolist() == pytest.approx([1.0])


def test_weights_count_a_deal_as_many_times_as_it_is_drawn() -> None:
    times, outcomes = [1, 2, 3, 4, 5], [WON, OPEN, LOST, WON, OPEN]
    weights = np.array([[1, 1, 1, 1, 1], [2, 2, 2, 2, 2], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=np.float64)
    won, lost = incidence(times, outcomes, weights=weights)
    # doubling every deal changes nothing; without the day-1 win: day 3 1 of 3 lost, day 4 1 of 2
    # won of the ⅔ left → ⅓; the day-1 win alone: everything won
    assert won.tolist() == pytest.approx([7 / 15, 7 / 15, 1 / 3, 1.0])
    assert lost.tolist() == pytest.approx([4 / 15, 4 / 15, 1 / 3, 0.0])


# --- stays by stage, as a deal's history makes them -------------------------------------------------


def _at(day: int) -> datetime:
    return CUT - timedelta(days=day)


def test_stays_follow_each_deal_to_its_outcome_or_to_the_cut() -> None:
    changes = [
        # deal 1: prospecting 10 days, negotiation 5 days, won (40 → 25 days before the cut)
        (1, None, "prospecting", _at(40)),
        (1, "prospecting", "negotiation", _at(30)),
        (1, "negotiation", "won", _at(25)),
        # deal 2: in negotiation for 100 days and still there (stalled)
        (2, None, "prospecting", _at(110)),
        (2, "prospecting", "negotiation", _at(100)),
        # deal 3: lost after 20 days in prospecting, but only after the cut (open then)
        (3, None, "prospecting", _at(20)),
        (3, "prospecting", "lost", CUT + timedelta(days=3)),
    ]
    deals = [
        (1, _at(40), _at(25), "won", _at(25)),
        (2, _at(110), None, "negotiation", _at(100)),
        (3, _at(20), CUT + timedelta(days=3), "lost", CUT + timedelta(days=3)),
        (4, CUT + timedelta(days=1), None, "prospecting", None),  # opened after the cut: not seen
        # no stage change recorded (imported): in its stage since its stage last changed (6 days) or,
        # without that, since it was opened (9 days)
        (5, _at(8), None, "qualification", _at(6)),
        (6, _at(9), None, "qualification", None),
    ]
    found = survival.build(changes, deals, CUT)
    assert found[Stage.PROSPECTING] == StageStays(
        length=(10.0, 10.0, 20.0), until_end=(15.0, 110.0, 20.0), outcome=(WON, OPEN, OPEN)
    )
    assert found[Stage.NEGOTIATION] == StageStays(length=(5.0, 100.0), until_end=(5.0, 100.0), outcome=(WON, OPEN))
    assert found[Stage.QUALIFICATION] == StageStays(length=(6.0, 9.0), until_end=(6.0, 9.0), outcome=(OPEN, OPEN))
    assert found[Stage.PROPOSAL] == StageStays(length=(), until_end=(), outcome=())


def _negotiation() -> StageStays:
    """20 deals won after 10 days in negotiation, 10 lost after 40 days, 30 stalled there for 200
    days and still open."""
    stays = sorted([(10.0, 10.0, WON)] * 20 + [(40.0, 40.0, LOST)] * 10 + [(200.0, 200.0, OPEN)] * 30)
    return StageStays(
        length=tuple(s[0] for s in stays), until_end=tuple(s[1] for s in stays), outcome=tuple(s[2] for s in stays)
    )


#: the evidence of the whole negotiation cohort: 30 decided deals, 30 open ones followed 200 days
ENTERING = 30 + 30 * 200 / 365


def test_stalled_deals_count_as_not_won_where_the_closed_deals_alone_say_one_in_five() -> None:
    stays = _negotiation()
    # entering the stage: a third won within the year (20 of 60; the stalled ones were not), from 30
    # decided deals and 30 followed 200 days of the horizon's 365, smoothed with a pseudo-deal each way
    assert stays.win_probability(0.0) == pytest.approx((ENTERING / 3 + 1) / (ENTERING + 2))
    # 30 days in: the deals that sat that long were lost or are still sitting — none won
    assert stays.win_probability(30.0) < 1e-6
    # the closed deals alone (the dwell rate) see only the ten lost ones, pulled toward the stage's
    # overall 21/32 by five pseudo-deals: 22 %
    closed = dwell.Stays(days=(10.0,) * 20 + (40.0,) * 10, won=(True,) * 20 + (False,) * 10)
    assert closed.rate(30.0) == pytest.approx(5 * 21 / 32 / 15)


def test_beyond_the_longest_stays_the_cohort_is_the_ten_longest() -> None:
    stays = _negotiation()
    # 500 days: no stay lasted that long; the cohort is the 30 stalled deals, followed from the last
    # landmark not beyond their 200 days (183: 30 days × 1.1⁶, rounded)
    assert stays.landmark(500.0) == 183.0
    assert stays.landmark(12.5) == 12.0
    assert StageStays(length=(), until_end=(), outcome=()).win_probability(3.0) == 0.5


def test_bootstrap_rows_of_one_are_the_point_estimate_and_replicates_vary() -> None:
    history = {stage: _negotiation() if stage is Stage.NEGOTIATION else StageStays((), (), ()) for stage in Stage}
    history = {stage: stays for stage, stays in history.items() if not stage.is_closed}
    point = survival.rates(history, ["negotiation", "negotiation", "proposal"], [0.0, 30.0, 5.0])
    assert point == pytest.approx([(ENTERING / 3 + 1) / (ENTERING + 2), 0.0, 0.5], abs=1e-6)
    draws = survival.bootstrap_rates(
        history, ["negotiation", "negotiation", "proposal"], [0.0, 30.0, 5.0], replicates=50, seed=3
    )
    assert draws.shape == (50, 3)
    assert draws[:, 0].std() > 0.01
    assert float(np.abs(draws[:, 0].mean() - point[0])) < 0.03
    assert (draws[:, 2] == 0.5).all()


# --- the run-rate's trend --------------------------------------------------------------------------


def test_a_growing_business_scales_the_run_rate_up_month_by_month() -> None:
    monthly = [20.0 + 5.0 * month for month in range(24)]  # 20 … 135
    found = trend.growth(monthly, 6)
    # the last twelve months average 107.5; the next months lie above the last one (135)
    assert (found.factor[0] * 107.5) > 135.0
    assert list(found.factor) == sorted(found.factor)
    assert found.factor[-1] < trend.HIGHEST
    # a straight line fits exactly: no uncertainty left in its level or slope
    assert found.spread == pytest.approx(np.zeros(6), abs=1e-9)


def test_a_flat_business_keeps_the_run_rate() -> None:
    noise = np.random.default_rng(7).normal(0.0, 5.0, 24)
    found = trend.growth(list(50.0 + noise), 6)
    assert found.factor == pytest.approx(np.ones(6), abs=0.1)
    assert (found.spread > 0).all()


def test_a_shrinking_business_scales_it_down_but_never_below_the_floor() -> None:
    found = trend.growth([135.0 - 5.0 * month for month in range(24)], 6)
    assert (found.factor < 1.0).all()
    assert list(found.factor) == sorted(found.factor, reverse=True)
    collapse = trend.growth([100.0] * 16 + [60.0, 30.0, 10.0, 5.0, 2.0, 1.0, 1.0, 1.0], 6)
    assert (collapse.factor >= trend.LOWEST).all()
    assert collapse.factor[-1] == trend.LOWEST


def test_a_short_or_empty_history_has_no_trend() -> None:
    # a business booking for seven months only (leading empty months are not history)
    short = trend.growth([0.0] * 17 + [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0], 6)
    assert (short.factor.tolist(), short.spread.tolist()) == ([1.0] * 6, [0.0] * 6)
    assert trend.growth([0.0] * 24, 4).factor.tolist() == [1.0] * 4


def test_the_line_error_worked_by_hand() -> None:
    # 1, 3, 2, 4: the line 1.3 + 0.8x leaves residuals −0.3, 0.9, −0.9, 0.3 → s² = 1.8 / 2 = 0.9;
    # x̄ = 1.5, Sxx = 5: at x = 4, s·√(1/4 + 2.5²/5) = √0.9 · √1.5
    assert trend.line_error(np.array([1.0, 3.0, 2.0, 4.0]), 1).tolist() == pytest.approx([np.sqrt(0.9 * 1.5)])


def test_the_simulation_scales_the_run_rate_by_the_trend_and_widens_its_interval() -> None:
    history = History(amount=np.full(365, 10.0), cycle_days=np.full(365, 30, dtype=np.int64), keys={})
    months, _ = horizon(AS_OF)
    plain = new_business_rates(history, AS_OF, months)
    growing = History(
        amount=history.amount,
        cycle_days=history.cycle_days,
        keys={},
        growth=trend.Growth(factor=np.array([1.0, 1.2, 1.4, 1.6, 1.8]), spread=np.array([0.0, 0.1, 0.2, 0.3, 0.4])),
    )
    assert new_business_rates(growing, AS_OF, months) == pytest.approx(plain * [1.0, 1.2, 1.4, 1.6, 1.8])
    empty = Pipeline(ids=[], amount=np.zeros(0), probability=np.zeros(0), expected_close=[])
    before = simulate(empty, history, np.array([0]), AS_OF, simulations=2000, seed=4)
    after = simulate(empty, growing, np.array([0]), AS_OF, simulations=2000, seed=4)
    march_before, march_after = before[("month", "2027-03", "total", None)], after[("month", "2027-03", "total", None)]
    assert march_after.run_rate == pytest.approx(1.8 * march_before.run_rate)
    assert march_after.high - march_after.low > 1.8 * (march_before.high - march_before.low)


# --- a snapshot, through the database --------------------------------------------------------------


NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def _deal(session: Session, tenant: Tenant, stage: Stage, entered: datetime, left: datetime | None) -> int:
    """A deal that entered negotiation at ``entered`` (opened a day before) and, when ``left`` is
    given, closed at ``stage`` then; else still in negotiation."""
    deal = Opportunity(
        organization_id=tenant.organization_id,
        name="谈判项目",
        owner_id=tenant["rep"].user_id,
        stage=stage if left is not None else Stage.NEGOTIATION,
        amount=Decimal(100_000),
        opened_at=entered - DAY,
        stage_changed_at=left or entered,
        closed_at=left,
        expected_close_date=(entered + 30 * DAY).date(),
    )
    session.add(deal)
    session.flush()
    moves = [(None, Stage.PROSPECTING, entered - DAY, None), (Stage.PROSPECTING, Stage.NEGOTIATION, entered, DAY)]
    if left is not None:
        moves.append((Stage.NEGOTIATION, stage, left, left - entered))
    for moved_from, moved_to, when, spent in moves:
        session.add(
            StageChange(
                organization_id=tenant.organization_id,
                opportunity_id=deal.id,
                from_stage=moved_from,
                to_stage=moved_to,
                changed_at=when,
                duration_seconds=None if spent is None else int(spent.total_seconds()),
            )
        )
    return int(deal.id)


def test_a_deal_stalled_in_negotiation_gets_the_chance_of_the_deals_that_stalled_before_it(
    db: Database, tenant: Tenant
) -> None:
    """History: 20 deals won after 10 days in negotiation, 10 lost after 40 days, 10 stalled there
    since 300 days before now and still open. A deal 60 days in negotiation: the closed deals alone
    (dwell) give it a fifth; counting the stalled ones, nothing like it was won."""
    with db.unit_of_work(None, system=True) as session:
        for index in range(20):
            entered = NOW - (200 + index) * DAY
            _deal(session, tenant, Stage.WON, entered, entered + 10 * DAY)
        for index in range(10):
            entered = NOW - (250 + index) * DAY
            _deal(session, tenant, Stage.LOST, entered, entered + 40 * DAY)
            _deal(session, tenant, Stage.NEGOTIATION, NOW - 300 * DAY, None)
        stalled = _deal(session, tenant, Stage.NEGOTIATION, NOW - 60 * DAY, None)
        fresh = _deal(session, tenant, Stage.NEGOTIATION, NOW - 2 * DAY, None)
    with frozen_at(NOW), db.unit_of_work(None, system=True) as session:
        deals = [
            OpenDeal(
                id=deal_id,
                owner_id=None,
                account_id=None,
                region_id=None,
                product_line_id=None,
                stage="negotiation",
                amount=100_000.0,
                expected_close=date(2026, 12, 31),
                stage_since=NOW - days * DAY,
            )
            for deal_id, days in ((stalled, 60), (fresh, 2))
        ]
        given, method, draws = probabilities(session, tenant.organization_id, deals, NOW.date(), replicates=20, seed=1)
        closed_only = dwell.stays(session, tenant.organization_id)[Stage.NEGOTIATION].rate(60.0)
        snapshot = take_snapshot(session, tenant.organization_id, simulations=200)
        # one factor per horizon month, November to March; under eight months of bookings: no trend
        assert snapshot.details["run_rate_trend"] == [1.0] * 5
    assert method == "stage_win_rate"
    assert closed_only == pytest.approx(5 * 21 / 32 / 15)
    assert given[0] < 1e-3
    # two days in: 20 of the 40 earlier deals were won (within 10 days); the stalled ten count as
    # not won, the two open deals' own stays as undecided: (20 + 1) / (42 + 2) at landmark 0, then
    # each day's cohort (the same 40 for days 1–2 plus the young deal censored) keeps a half
    assert given[1] == pytest.approx(0.5, abs=0.02)
    assert draws is not None
    assert draws.shape == (20, 2)
