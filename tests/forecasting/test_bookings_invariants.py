"""The bookings forecast hangs together whatever the pipeline (hypothesis): every cell has
commit ≤ best case ≤ pipeline, the open expected value ≤ the pipeline, the expected value inside its
80 % interval; months add up to their quarter, and owners to the total; a deal past due beyond the
history is in no period."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeloop.forecasting.simulation import History, Pipeline, beyond_history, horizon, simulate

AS_OF = date(2026, 11, 26)
STAGES = ("prospecting", "qualification", "proposal", "negotiation")

deal = st.tuples(
    st.floats(1_000, 5_000_000),  # amount
    st.floats(0.0, 1.0),  # win probability
    st.integers(-300, 200),  # expected close, days from today (negative: past due)
    st.sampled_from(STAGES),
    st.integers(1, 3),  # owner
)


@settings(max_examples=40, deadline=None)
@given(
    deals=st.lists(deal, max_size=25),
    slips=st.lists(st.integers(-30, 150), min_size=1, max_size=30),
    wins=st.lists(st.tuples(st.floats(1_000, 1_000_000), st.integers(1, 200), st.integers(1, 3)), max_size=20),
)
def test_every_cell_hangs_together(
    deals: list[tuple[float, float, int, str, int]],
    slips: list[int],
    wins: list[tuple[float, int, int]],
) -> None:
    pipeline = Pipeline(
        ids=list(range(len(deals))),
        amount=np.array([d[0] for d in deals], dtype=np.float64),
        probability=np.array([d[1] for d in deals], dtype=np.float64),
        expected_close=[AS_OF + timedelta(days=d[2]) for d in deals],
        keys={"owner": [d[4] for d in deals], "region": [None] * len(deals), "product_line": [None] * len(deals)},
        stage=[d[3] for d in deals],
    )
    history = History(
        amount=np.array([w[0] for w in wins], dtype=np.float64),
        cycle_days=np.array([w[1] for w in wins], dtype=np.int64),
        keys={"owner": [w[2] for w in wins], "region": [None] * len(wins), "product_line": [None] * len(wins)},
    )
    cells = simulate(pipeline, history, np.array(slips, dtype=np.int64), AS_OF, simulations=200, seed=3)
    tolerance = 1e-6 * (1 + float(pipeline.amount.sum()) + float(history.amount.sum()))
    for cell in cells.values():
        assert cell.commit <= cell.best_case + tolerance
        assert cell.best_case <= cell.pipeline + tolerance
        assert cell.expected - cell.run_rate <= cell.pipeline + tolerance  # open expected ≤ pipeline
        assert cell.low <= cell.expected <= cell.high
    months, quarters = horizon(AS_OF)
    for quarter in quarters:
        inside = [m for m in months if quarter.start <= m.start < quarter.end]
        for name in ("expected", "run_rate", "commit", "best_case", "pipeline"):
            summed = sum(getattr(cells[("month", m.label, "total", None)], name) for m in inside)
            assert getattr(cells[("quarter", quarter.label, "total", None)], name) == pytest.approx(
                summed, abs=tolerance
            )
    for month in months:
        total = cells[("month", month.label, "total", None)]
        owners = [cell for (g, p, d, _), cell in cells.items() if g == "month" and p == month.label and d == "owner"]
        assert sum(cell.expected for cell in owners) == pytest.approx(total.expected, abs=tolerance)
        assert sum(cell.pipeline for cell in owners) == pytest.approx(total.pipeline, abs=tolerance)
    # what the pipeline spreads over the horizon never exceeds the open deals that history can place
    placeable = sum(
        amount
        for amount, expected_close in zip(pipeline.amount, pipeline.expected_close, strict=True)
        if not beyond_history(expected_close, slips, AS_OF)
    )
    spread = sum(cells[("month", m.label, "total", None)].pipeline for m in months)
    assert spread <= placeable + tolerance


def test_a_long_shot_keeps_its_expected_value_inside_the_interval() -> None:
    # one deal at 5 %: nine simulations in ten win nothing, so the 10th–90th percentiles are both 0
    # while the mean is 5; the interval is widened to take the mean in
    pipeline = Pipeline(
        ids=[1], amount=np.array([100.0]), probability=np.array([0.05]), expected_close=[date(2026, 12, 10)]
    )
    empty = History(amount=np.array([]), cycle_days=np.array([], dtype=np.int64))
    december = simulate(pipeline, empty, np.array([0]), AS_OF, simulations=1000)[("month", "2026-12", "total", None)]
    assert december.low == 0.0
    assert december.expected == pytest.approx(5.0)
    assert december.high == pytest.approx(5.0)
