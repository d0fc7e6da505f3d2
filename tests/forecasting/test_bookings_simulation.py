"""The bookings forecast's arithmetic on hand-sized pipelines: exact means, intervals, run-rate,
consistency across dimensions, reproducibility; and attribution shares that add up."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from closeloop.forecasting.attribution import DealOutcome, decompose
from closeloop.forecasting.simulation import History, Pipeline, horizon, new_business_rates, simulate

AS_OF = date(2026, 11, 10)


def _pipeline(amounts: list[float], probabilities: list[float], closes: list[date], owners: list[int]) -> Pipeline:
    return Pipeline(
        ids=list(range(len(amounts))),
        amount=np.array(amounts, dtype=np.float64),
        probability=np.array(probabilities, dtype=np.float64),
        expected_close=closes,
        keys={"owner": owners, "region": [None] * len(amounts), "product_line": [7] * len(amounts)},
    )


EMPTY = History(amount=np.array([]), cycle_days=np.array([], dtype=np.int64), keys={})


def test_the_horizon_runs_from_this_month_to_the_end_of_next_quarter() -> None:
    months, quarters = horizon(AS_OF)
    assert [m.label for m in months] == ["2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]
    assert [q.label for q in quarters] == ["2026-Q4", "2027-Q1"]
    assert [m.label for m in horizon(date(2026, 1, 31))[0]] == [
        "2026-01",
        "2026-02",
        "2026-03",
        *[f"2026-0{i}" for i in (4, 5, 6)],
    ]


def test_certain_deals_land_where_expected_and_slippage_moves_them() -> None:
    pipeline = _pipeline([100.0, 50.0], [1.0, 1.0], [date(2026, 11, 20), date(2026, 12, 15)], [1, 2])
    cells = simulate(pipeline, EMPTY, np.array([0]), AS_OF, simulations=200)
    november, december = cells[("month", "2026-11", "total", None)], cells[("month", "2026-12", "total", None)]
    assert (november.expected, november.low, november.high) == (100.0, 100.0, 100.0)
    assert (december.expected, december.low, december.high) == (50.0, 50.0, 50.0)
    assert cells[("quarter", "2026-Q4", "total", None)].expected == 150.0
    # half the history slipped 20 days: each deal has half its amount in the next month
    slipped = simulate(pipeline, EMPTY, np.array([0, 20]), AS_OF, simulations=200)
    assert slipped[("month", "2026-11", "total", None)].expected == pytest.approx(50.0)
    assert slipped[("month", "2026-12", "total", None)].expected == pytest.approx(50.0 + 25.0)
    assert slipped[("month", "2027-01", "total", None)].expected == pytest.approx(25.0)
    # a deal 40 days past due can only be one of the won deals that slipped 40 days or more: of the
    # slips 0, 30, 60 and 90 only the last two apply (October 1st + 60 = November 30th, + 90 = December 30th)
    late = _pipeline([10.0], [1.0], [date(2026, 10, 1)], [1])
    overdue = simulate(late, EMPTY, np.array([0, 30, 60, 90]), AS_OF, simulations=50)
    assert overdue[("month", "2026-11", "total", None)].expected == pytest.approx(5.0)
    assert overdue[("month", "2026-12", "total", None)].expected == pytest.approx(5.0)
    # past due beyond every slip in the history: in no period (shown apart, to be re-dated)
    beyond = simulate(late, EMPTY, np.array([0, 30]), AS_OF, simulations=50)
    assert all(cell.expected == cell.pipeline == 0.0 for cell in beyond.values())


def test_intervals_bracket_the_mean_and_dimensions_add_up() -> None:
    rng = np.random.default_rng(3)
    count = 60
    closes = [date(2026, 11 + int(i % 2), 15) for i in range(count)]
    pipeline = _pipeline(
        list(rng.uniform(1_000, 5_000, count)),
        list(rng.uniform(0.1, 0.9, count)),
        closes,
        [i % 4 for i in range(count)],
    )
    history = History(
        amount=rng.uniform(1_000, 3_000, 200),
        cycle_days=rng.integers(5, 60, 200),
        keys={"owner": [i % 4 for i in range(200)], "region": [None] * 200, "product_line": [7] * 200},
    )
    first = simulate(pipeline, history, np.array([-5, 0, 0, 10]), AS_OF, simulations=1500, seed=11)
    again = simulate(pipeline, history, np.array([-5, 0, 0, 10]), AS_OF, simulations=1500, seed=11)
    assert first == again  # seeded: the same forecast twice
    for period in ("2026-11", "2026-12"):
        total = first[("month", period, "total", None)]
        assert total.low < total.expected < total.high
        owners = [first[("month", period, "owner", owner)] for owner in range(4)]
        assert sum(cell.expected for cell in owners) == pytest.approx(total.expected)
        assert sum(cell.run_rate for cell in owners) == pytest.approx(total.run_rate)
        assert first[("month", period, "product_line", 7)].expected == pytest.approx(total.expected)
    quarter = first[("quarter", "2026-Q4", "total", None)]
    months = [first[("month", label, "total", None)] for label in ("2026-11", "2026-12")]
    assert quarter.expected == pytest.approx(sum(cell.expected for cell in months))


def test_the_simulated_mean_agrees_with_the_exact_mean() -> None:
    pipeline = _pipeline([1_000.0] * 40, [0.3] * 40, [date(2026, 12, 10)] * 40, [1] * 40)
    cells = simulate(pipeline, EMPTY, np.array([0]), AS_OF, simulations=4000, seed=5)
    december = cells[("month", "2026-12", "total", None)]
    assert december.expected == pytest.approx(12_000.0)
    # a binomial(40, 0.3) × 1,000: its 10th and 90th percentiles are 8,000 and 16,000
    assert (december.low, december.high) == (8_000.0, 16_000.0)


def test_run_rate_counts_only_cycles_that_fit_in_the_time_left() -> None:
    # 365 wins a year (one a day), every one of them opened 30 days before it was won
    history = History(amount=np.full(365, 10.0), cycle_days=np.full(365, 30, dtype=np.int64), keys={})
    months, _ = horizon(AS_OF)
    rates = new_business_rates(history, AS_OF, months)
    # November: days 1..20 after the 10th are all shorter than 30 days; December: days 21..51, of
    # which 30..51 (22 days) fit; from January on, every day does
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(22.0)
    assert rates[2] == pytest.approx(31.0)
    cells = simulate(_pipeline([], [], [], []), history, np.array([0]), AS_OF, simulations=300)
    assert cells[("month", "2026-12", "total", None)].run_rate == pytest.approx(220.0)
    assert cells[("month", "2026-12", "total", None)].expected == pytest.approx(220.0)


def test_attribution_shares_add_up_and_each_driver_takes_its_part() -> None:
    deals = [
        # won in the period at 120 instead of 100, probability 0.5, all of it expected in the period
        DealOutcome(50.0, 0.5, 100.0, 120.0, won_in_period=True, lost=False, owner_changed=False, account_lost=False),
        # slipped: still open
        DealOutcome(40.0, 0.8, 50.0, 50.0, won_in_period=False, lost=False, owner_changed=False, account_lost=False),
        # lost against a 0.5 probability
        DealOutcome(30.0, 0.5, 60.0, 60.0, won_in_period=False, lost=True, owner_changed=False, account_lost=False),
        # changed hands and was lost
        DealOutcome(20.0, 0.4, 50.0, 50.0, won_in_period=False, lost=True, owner_changed=True, account_lost=False),
        # its account went back to the pool
        DealOutcome(10.0, 0.2, 50.0, 0.0, won_in_period=False, lost=True, owner_changed=True, account_lost=True),
        # still open while the period runs: pending, not a deviation yet
        DealOutcome(
            8.0, 0.4, 20.0, 20.0, won_in_period=False, lost=False, owner_changed=False, account_lost=False, pending=True
        ),
        # won in the period though the snapshot placed only half of it there (probability 0.6, share 0.5)
        DealOutcome(30.0, 0.6, 100.0, 100.0, won_in_period=True, lost=False, owner_changed=False, account_lost=False),
    ]
    parts = decompose(deals, [(70.0, True), (25.0, False)], run_rate=40.0)
    forecast = sum(deal.forecast for deal in deals) + 40.0
    actual = 120.0 + 100.0 + 70.0 + 25.0
    gap = actual - forecast
    assert sum(parts.values()) == pytest.approx(gap)
    assert sum(value / gap for value in parts.values()) == pytest.approx(1.0)
    assert parts["amount_change"] == pytest.approx(20.0)
    assert parts["close_date"] == pytest.approx(-40.0 + 30.0)  # slipped −40; pulled in 0.6 × 100 − 30
    assert parts["owner_change"] == pytest.approx(-20.0)
    assert parts["lost_account"] == pytest.approx(-10.0)
    assert parts["new_accounts"] == pytest.approx(70.0)
    assert parts["pending"] == pytest.approx(-8.0)
    # wins and losses against probability (+50 − 30 + 40) and other new business vs run-rate (25 − 40)
    assert parts["unexplained"] == pytest.approx(50.0 - 30.0 + 40.0 + (25.0 - 40.0))
