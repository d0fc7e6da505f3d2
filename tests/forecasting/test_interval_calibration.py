"""The bookings forecast's 80 % interval calibrated against the organization's own past forecasts
(split conformal, per granularity and lead — forecasting/calibration.py): the quantiles and the
widened interval worked by hand, no leakage from periods still running or snapshots taken later,
the conformal coverage on exchangeable errors, and the snapshot, API and page saying which
calibration was applied and from how many pairs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.db.session import Database
from closeloop.forecasting import calibration
from closeloop.forecasting.bookings import take_snapshot
from closeloop.forecasting.calibration import Adjustment, Pair, conformal_quantile, lead_of, learn, past_pairs
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot
from closeloop.forecasting.simulation import add_months
from tests.factories import Tenant
from tests.forecasting.test_bookings_api import _deal
from tests.web.test_settings_pages import browser

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
#: booked in each month from February to October 2026, one won deal on the 15th (thousands)
BOOKED = [80, 95, 100, 105, 112, 115, 120, 125, 130]


def _pair(actual: float, *, lead: int = 0, low: float = 90, high: float = 110, expected: float = 100) -> Pair:
    return Pair("month", lead, "2026-01", date(2026, 1, 1), expected, low, high, actual)


def test_the_conformal_quantile_needs_nine_scores_for_a_ten_percent_tail() -> None:
    """⌈(n + 1) · 0.9⌉-th smallest: n = 8 → rank 9 > 8 (no finite bound); n = 9 → the 9th (the
    largest); n = 19 → the 18th; n = 20 → ⌈18.9⌉ = 19th."""
    assert conformal_quantile([float(i) for i in range(8)]) is None
    assert conformal_quantile([float(i) for i in range(9)]) == 8.0
    assert conformal_quantile([float(i) for i in range(19)]) == 17.0
    assert conformal_quantile([float(i) for i in range(20)]) == 18.0
    assert conformal_quantile([]) is None
    assert calibration.MIN_PAIRS == 9


def test_a_calibration_worked_by_hand() -> None:
    """Nine past forecasts of 100 with the simulated interval 90–110 (width 20), actuals 80 … 130.
    Lower scores (90 − y) ÷ 20: 0.5, −0.25, −0.5, −0.75, −1.1, −1.25, −1.5, −1.75, −2.0 → the 9th
    smallest of 9 is 0.5; upper scores (y − 110) ÷ 20: −1.5 … 1.0 → 1.0. A new forecast of 200 with
    the simulated 180–220 (width 40) becomes 180 − 0.5·40 = 160 to 220 + 1.0·40 = 260: widened more
    upward, where the past actuals overshot further. Bias: mean (y − 100) ÷ 100 = 82 / 900."""
    pairs = [_pair(value) for value in BOOKED]
    found = learn(pairs, "month", 0)
    assert (found.pairs, found.lower, found.upper) == (9, 0.5, 1.0)
    assert found.applied
    assert found.bias == pytest.approx(82 / 900)
    assert found.apply(200, 180, 220) == (160, 260)
    # never below what is already booked in the period
    assert found.apply(200, 180, 220, floor=170) == (170, 260)
    # another lead or granularity has no pairs: the interval stays as simulated
    other = learn(pairs, "month", 1)
    assert (other.pairs, other.applied, other.bias) == (0, False, None)
    assert other.apply(200, 180, 220) == (180, 220)
    assert not learn(pairs, "quarter", 0).applied
    # eight pairs are one too few; a pair whose simulated interval has no width cannot be scaled
    assert not learn(pairs[:8], "month", 0).applied
    assert learn([*pairs[:8], _pair(100, low=100, high=100)], "month", 0).pairs == 8


def test_an_interval_too_wide_is_narrowed_and_one_too_low_is_shifted() -> None:
    """Actuals always 100 inside 90–110: both scores −0.5 → the interval shrinks by half a width each
    side, to the point 100. Actuals 120 … 128 above 90–110 (width 20): lower scores −1.5 … −1.9 → −1.5,
    upper 0.5 … 0.9 → 0.9: 90 + 1.5·20 = 120 to 110 + 0.9·20 = 128, then stretched down to take in
    the expected value 100 (the page's identity), so 100–128."""
    assert learn([_pair(100) for _ in range(9)], "month", 0).apply(100, 90, 110) == (100, 100)
    above = learn([_pair(120 + i) for i in range(9)], "month", 0)
    assert above.lower == pytest.approx(-1.5)
    assert above.upper == pytest.approx(0.9)
    low, high = above.apply(100, 90, 110)
    assert low == 100
    assert high == pytest.approx(128)


@given(
    lower=st.floats(-3, 3),
    upper=st.floats(-3, 3),
    expected=st.floats(0, 1e6),
    below=st.floats(0, 1e6),
    width=st.floats(0, 1e6),
    booked_share=st.floats(0, 1),
)
@settings(max_examples=200, deadline=None)
def test_a_calibrated_interval_holds_the_expected_value_and_what_is_booked(
    lower: float, upper: float, expected: float, below: float, width: float, booked_share: float
) -> None:
    low = max(expected - below, 0.0)
    high = max(low + width, expected)
    booked = booked_share * low
    found = Adjustment("month", 0, 9, lower, upper, 0.0)
    new_low, new_high = found.apply(expected, low, high, floor=booked)
    assert booked - 1e-6 <= new_low <= expected <= new_high


def test_the_calibrated_interval_covers_eighty_percent_of_exchangeable_errors() -> None:
    """Forecasts whose simulated interval is far too narrow and biased low (the actual is the expected
    value times a skewed error): the simulated interval holds ~20 % of the actuals, the interval
    calibrated on 19 earlier pairs at least 80 % (the conformal guarantee) and at most ~90 %."""
    rng = np.random.default_rng(5)
    trials, n = 3000, 19
    simulated = calibrated = 0
    for _ in range(trials):
        expected = rng.uniform(50, 150, size=n + 1)
        actual = expected * rng.lognormal(0.15, 0.25, size=n + 1)
        low, high = expected * 0.97, expected * 1.03
        pairs = [
            Pair("month", 0, "", date(2026, 1, 1), e, lo, hi, y)
            for e, lo, hi, y in zip(expected, low, high, actual, strict=True)
        ]
        found = learn(pairs[:n], "month", 0)
        new_low, new_high = found.apply(float(expected[n]), float(low[n]), float(high[n]))
        calibrated += new_low <= actual[n] <= new_high
        simulated += low[n] <= actual[n] <= high[n]
    assert simulated / trials < 0.3
    assert 0.8 - 0.02 <= calibrated / trials <= 0.9 + 0.02


def test_leads_count_months_and_quarters_from_the_snapshot() -> None:
    assert lead_of("month", date(2026, 11, 10), date(2026, 11, 1)) == 0
    assert lead_of("month", date(2026, 11, 10), date(2027, 2, 1)) == 3
    assert lead_of("quarter", date(2026, 11, 10), date(2026, 10, 1)) == 0
    assert lead_of("quarter", date(2026, 11, 10), date(2027, 1, 1)) == 1
    assert lead_of("quarter", date(2026, 12, 31), date(2027, 4, 1)) == 2


def test_one_snapshot_per_month_the_nearest_in_day_within_the_window() -> None:
    found = [
        (1, date(2026, 10, 1)),
        (2, date(2026, 10, 9)),  # nearest the 10th in October
        (3, date(2026, 10, 11)),  # as near, but later
        (4, date(2026, 11, 5)),  # this month, before the as-of day: used
        (5, date(2026, 11, 10)),  # the as-of day itself: not before it
        (6, date(2026, 12, 1)),  # after it
        (7, date(2025, 10, 10)),  # beyond the 12-month window
        (8, date(2025, 11, 10)),
    ]
    assert calibration.chosen_snapshots(found, date(2026, 11, 10)) == [
        (8, date(2025, 11, 10)),
        (2, date(2026, 10, 9)),
        (4, date(2026, 11, 5)),
    ]


# --- through the database ---------------------------------------------------------------------------


def _history(db: Database, tenant: Tenant, *, later: bool = True) -> None:
    """One won deal on the 15th of each month February–October 2026 (``BOOKED`` thousand) and one of
    50,000 on 3 November; a snapshot as of the 10th of each of those months forecasting its own month at 100,000,
    simulated 90,000–110,000 (the stored row holds a calibrated 0–1,000,000, which must not be learned
    from); a decoy on 1 October, one on 5 November whose month is still running, and one of 20
    November (after the as-of day) that forecast October absurdly (with ``later``)."""
    with db.unit_of_work(None, system=True) as session:
        for index, amount in enumerate([*BOOKED, 50]):
            closed = datetime(2026, 2 + index, 15 if index < len(BOOKED) else 3, 10, tzinfo=UTC)
            session.add(
                _deal(tenant, "rep", Stage.WON, amount * 1000, opened_at=closed - timedelta(days=20),
                      closed_at=closed, stage_changed_at=closed, expected_close_date=closed.date())
            )  # fmt: skip
        taken = [date(2026, month, 10) for month in range(2, 11)]
        taken += [date(2026, 10, 1), date(2026, 11, 5), *([date(2026, 11, 20)] if later else [])]
        for day in taken:
            month = day.replace(day=1) if day != date(2026, 11, 20) else date(2026, 10, 1)
            label = f"{month.year}-{month.month:02d}"
            snapshot = BookingsSnapshot(
                organization_id=tenant.organization_id,
                taken_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                as_of=day,
                method="stage_win_rate",
                simulations=100,
                seed=1,
                details={"interval": {"simulated": {f"month:{label}": [90_000 if day.day == 10 else 0, 110_000]}}},
            )
            session.add(snapshot)
            session.flush()
            session.add(
                BookingsForecastRow(
                    organization_id=tenant.organization_id, snapshot_id=snapshot.id, granularity="month",
                    period=label, period_start=month, period_end=add_months(month, 1), dimension="total",
                    key=None, won_to_date=0, expected=100_000 if day.day != 20 else 1, low=0, high=1_000_000,
                    run_rate=0, commit=0, best_case=0, pipeline=0, open_deals=0,
                )
            )  # fmt: skip


def test_past_pairs_use_finished_periods_of_earlier_snapshots_only(db: Database, tenant: Tenant) -> None:
    _history(db, tenant)
    with frozen_at(NOW), db.reading(None, system=True) as session:
        pairs = past_pairs(session, tenant.organization_id, date(2026, 11, 10))
        assert [(pair.period, pair.as_of, pair.actual, pair.low, pair.high) for pair in pairs] == [
            (f"2026-{month:02d}", date(2026, month, 10), amount * 1000.0, 90_000.0, 110_000.0)
            for month, amount in zip(range(2, 11), BOOKED, strict=True)
        ]
        assert {pair.lead for pair in pairs} == {0}
        # as of 10 July: June's snapshot and earlier only, and July's bookings not yet known
        early = past_pairs(session, tenant.organization_id, date(2026, 7, 10))
        assert [pair.period for pair in early] == ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
        assert past_pairs(session, tenant.organization_id, date(2026, 2, 10)) == []


def _by_period(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["period"]: item for item in body["items"]}


def test_a_snapshot_calibrates_its_interval_and_says_so(client: TestClient, db: Database, tenant: Tenant) -> None:
    """The hand-worked pairs above (q_lo 0.5, q_hi 1.0 at lead 0) widen today's November interval
    from its simulated [lo, hi] to [lo − 0.5 w, hi + 1.0 w] (not below the 50,000 booked, taking in
    the expected value); December (lead 1, no pairs) stays as simulated. The API and page say which."""
    _history(db, tenant, later=False)
    with frozen_at(NOW):
        with db.unit_of_work(None, system=True) as session:
            snapshot = take_snapshot(session, tenant.organization_id, simulations=300)
            interval = snapshot.details["interval"]
            assert interval["method"] == "split_conformal"
            leads = {(item["granularity"], item["lead"]): item for item in interval["leads"]}
            assert leads[("month", 0)] | {"bias": None} == {
                "granularity": "month", "lead": 0, "pairs": 9, "applied": True,
                "lower": 0.5, "upper": 1.0, "bias": None,
            }  # fmt: skip
            assert leads[("month", 1)]["pairs"] == 0
            assert not leads[("month", 1)]["applied"]
            assert not leads[("quarter", 0)]["applied"]
            rows = {
                row.period: row
                for row in session.scalars(
                    select(BookingsForecastRow).where(
                        BookingsForecastRow.snapshot_id == snapshot.id, BookingsForecastRow.dimension == "total"
                    )
                )
            }
            november, december = rows["2026-11"], rows["2026-12"]
            low, high = interval["simulated"]["month:2026-11"]
            width = high - low
            expected = float(november.expected)
            assert float(november.won_to_date) == 50_000
            assert float(november.low) == pytest.approx(max(min(low - 0.5 * width, expected), 50_000), abs=0.05)
            assert float(november.high) == pytest.approx(max(high + 1.0 * width, expected), abs=0.05)
            assert width > 0
            assert float(november.high) > high
            assert [float(december.low), float(december.high)] == interval["simulated"]["month:2026-12"]
        body = client.get("/api/v1/forecasts/bookings", headers=tenant["sales_vp"].headers).json()
        assert body["snapshot"]["interval"]["method"] == "split_conformal"
        assert body["snapshot"]["interval"]["min_pairs"] == 9
        months = _by_period(body)
        assert (months["2026-11"]["interval"], months["2026-11"]["interval_pairs"]) == ("split_conformal", 9)
        assert (months["2026-12"]["interval"], months["2026-12"]["interval_pairs"]) == ("simulated", 0)
        owners = client.get("/api/v1/forecasts/bookings?dimension=owner", headers=tenant["sales_vp"].headers).json()
        assert {item["interval"] for item in owners["items"] if item["period"] == "2026-11"} == {"split_conformal"}

        for locale, words in (("en", "calibrated against"), ("zh_CN", "校准")):
            html = browser(client, db, tenant["sales_vp"], locale=locale).get("/forecasts").text
            assert 'id="forecast-interval"' in html
            assert words in html
            assert "2026-11 (9)" in html
            assert "2026-12 (0)" in html
