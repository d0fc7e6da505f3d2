"""The past-due adjustment of the win probability: worked by hand, its properties, and through the
API, the opportunity page and the bookings snapshot on a small synthetic organization."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from closeloop.core.clock import frozen_at, utcnow
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.forecasting.bookings import take_snapshot
from closeloop.forecasting.models import BookingsSnapshotDeal
from closeloop.forecasting.past_due import Lateness, adjust
from tests.factories import Tenant
from tests.web.test_settings_pages import browser

TODAY = date(2026, 11, 27)
#: ten deals lost 20 days before their date (they say nothing about lateness), ten closed 2 days late
#: (7 won), ten closed 35 days late (1 won)
HISTORY = Lateness(
    days=(-20,) * 10 + (2,) * 10 + (35,) * 10, won=(False,) * 10 + (True,) * 7 + (False,) * 3 + (True,) + (False,) * 9
)


def test_a_deal_35_days_late_worked_by_hand() -> None:
    # reference: the 20 deals still open on their date, 8 won → 0.4; cohort: the 10 closed 35+ days
    # late, 1 won, smoothed with 5 pseudo-deals at 0.4 → (1 + 2) / 15 = 0.2; odds ratio
    # (0.2 / 0.8) / (0.4 / 0.6) = 0.375; a 0.6 deal's odds 1.5 × 0.375 = 0.5625 → 0.5625 / 1.5625 = 0.36
    late = adjust(0.6, TODAY - timedelta(days=35), TODAY, HISTORY)
    assert late is not None
    assert late.base_rate == pytest.approx(0.4)
    assert (late.cohort_days, late.cohort_deals, late.cohort_won) == (35, 10, 1)
    assert late.odds_ratio == pytest.approx(0.375)
    assert late.probability == pytest.approx(0.36)
    assert late.reason("zh_CN")["text"].startswith(
        "预计成交日期已过 35 天：过期 35 天以上才结单的 10 个商机中 10% 赢单"
    )
    assert late.reason("en")["text"].startswith("Expected close passed 35 days ago")
    assert late.reason("en")["text"].endswith("lowers the chance from 60% to 36%")
    assert late.reason("en")["direction"] == "down"


def test_a_change_too_small_to_show_is_not_called_a_lowering() -> None:
    # a barely lower cohort moves 82.4 % to 82.1 %: both read "82%", so the reason must not say "lowered"
    slight = Lateness(days=(0,) * 200 + (10,) * 200, won=(True,) * 100 + (False,) * 100 + (True,) * 99 + (False,) * 101)
    late = adjust(0.824, TODAY - timedelta(days=10), TODAY, slight)
    assert late is not None
    assert late.probability < 0.824
    assert f"{late.probability:.0%}" == "82%"
    assert late.reason("en")["direction"] == "flat"
    assert late.reason("zh_CN")["text"].endswith("赢单可能基本不变")


def test_beyond_the_evidence_the_cohort_is_the_latest_ten() -> None:
    # nothing closed 90 days late: the cohort falls back to the latest ten deals (35 days late)
    late = adjust(0.6, TODAY - timedelta(days=90), TODAY, HISTORY)
    assert late is not None
    assert (late.days_past_due, late.cohort_days, late.cohort_deals) == (90, 35, 10)
    assert late.probability == pytest.approx(0.36)


def test_a_late_cohort_that_wins_more_often_changes_nothing() -> None:
    # 1 day late: the cohort (closed 1+ days late) won 8 of 10, more often than the reference (8 of 20)
    late = adjust(
        0.6,
        TODAY - timedelta(days=1),
        TODAY,
        Lateness(days=(0,) * 10 + (2,) * 10, won=(False,) * 10 + (True,) * 8 + (False,) * 2),
    )
    assert late is not None
    assert late.odds_ratio == 1.0
    assert late.probability == 0.6
    assert late.reason("en")["direction"] == "flat"
    assert late.reason("en")["text"].endswith("the chance is about the same")


def test_not_past_due_or_nothing_to_learn_from() -> None:
    assert adjust(0.6, TODAY, TODAY, HISTORY) is None
    assert adjust(0.6, TODAY + timedelta(days=3), TODAY, HISTORY) is None
    assert adjust(0.6, None, TODAY, HISTORY) is None
    assert adjust(0.6, TODAY - timedelta(days=5), TODAY, Lateness(days=(-3,), won=(False,))) is None


@given(
    probability=st.floats(0.0, 1.0),
    days=st.lists(st.integers(-60, 120), min_size=1, max_size=60),
    wins=st.lists(st.booleans(), min_size=60, max_size=60),
    late_by=st.integers(1, 200),
)
def test_the_adjustment_only_lowers_and_grows_with_lateness(
    probability: float, days: list[int], wins: list[bool], late_by: int
) -> None:
    history = Lateness(days=tuple(sorted(days)), won=tuple(wins[: len(days)]))
    first = adjust(probability, TODAY - timedelta(days=late_by), TODAY, history)
    if first is None:
        assert history.base_rate is None
        return
    assert 0.0 <= first.probability <= probability
    assert 0.0 < first.odds_ratio <= 1.0


def _seed(db: Database, tenant: Tenant) -> int:
    """The HISTORY above as closed deals owned by the rep, and one open negotiation deal 35 days past
    its expected close date; returns the open deal's id."""
    today = utcnow().date()
    owner = tenant["rep"].user_id
    with db.unit_of_work(None, system=True) as session:
        for index, (late, won) in enumerate(zip(HISTORY.days, HISTORY.won, strict=True)):
            closed = datetime.combine(today - timedelta(days=100 + index), time(12), tzinfo=UTC)
            session.add(
                Opportunity(
                    organization_id=tenant.organization_id,
                    name=f"closed {index}",
                    owner_id=owner,
                    stage=Stage.WON if won else Stage.LOST,
                    amount=Decimal(10000),
                    opened_at=closed - timedelta(days=60),
                    closed_at=closed,
                    stage_changed_at=closed,
                    expected_close_date=closed.date() - timedelta(days=late),
                )
            )
        opened = datetime.combine(today - timedelta(days=90), time(9), tzinfo=UTC)
        deal = Opportunity(
            organization_id=tenant.organization_id,
            name="late",
            owner_id=owner,
            stage=Stage.NEGOTIATION,
            amount=Decimal(50000),
            opened_at=opened,
            stage_changed_at=opened,
            expected_close_date=today - timedelta(days=35),
        )
        session.add(deal)
        session.flush()
        return deal.id


#: the moment the page test runs at (the open deal was opened 90 days before, at 09:00)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MODEL = 1 / (90.125 / 365 + 2)
LOWERED = MODEL / (1 - MODEL) * 0.375 / (1 + MODEL / (1 - MODEL) * 0.375)


def test_the_api_page_and_snapshot_lower_a_late_deal(client: TestClient, db: Database, tenant: Tenant) -> None:
    with frozen_at(NOW):
        deal = _seed(db, tenant)
        response = client.get(
            f"/api/v1/opportunities/{deal}/win-probability",
            headers={**tenant["rep"].headers, "Accept-Language": "*"},  # no language asked: the rep's own
        )
        assert response.status_code == 200, response.text
        body = response.json()
        # no model yet: no deal passed through negotiation but this one, open there for 90 days and 3
        # hours (a quarter of the year's horizon, counted as that much evidence of no win): the stage's
        # chance is (0 + 1) / (e + 2), e = 90.125 / 365 (forecasting/survival.py); odds × 0.375
        assert body["past_due"] == {
            "days_past_due": 35,
            "model_probability": round(MODEL, 4),
            "odds_ratio": 0.375,
            "cohort": {"min_days_late": 35, "closed_deals": 10, "won_deals": 1, "win_rate": 0.1},
            "base_win_rate": 0.4,
        }
        assert body["probability"] == round(LOWERED, 4)
        assert body["reasons"][0]["feature"] == "days_past_due"
        assert body["reasons"][0]["text"].startswith("预计成交日期已过 35 天")  # the rep reads Chinese by default

        page = browser(client, db, tenant["rep"], locale="zh_CN").get(f"/opportunities/{deal}")
        assert page.status_code == 200
        assert "预计成交日期已过 35 天" in page.text
        assert "已从 45% 下调" in page.text
        english = browser(client, db, tenant["rep"], locale="en").get(f"/opportunities/{deal}")
        assert "Expected close passed 35 days ago" in english.text
        assert "Lowered from 45%" in english.text

        # the bookings snapshot simulates the deal with the same lowered probability
        with db.unit_of_work(None, system=True) as session:
            snapshot = take_snapshot(session, tenant.organization_id, simulations=50, seed=1)
            stored = session.scalar(
                select(BookingsSnapshotDeal.probability).where(
                    BookingsSnapshotDeal.snapshot_id == snapshot.id, BookingsSnapshotDeal.opportunity_id == deal
                )
            )
        assert stored == pytest.approx(LOWERED)
