"""A snapshot computed for a past day sees each deal as it stood then: the amount and expected close
date of the audit trail (whichever path changed them since — the API, the web form, an import), and
a win probability for the days the deal had sat in its stage (the stage win rate of the closed deals
that sat there as long)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.session import Database
from closeloop.forecasting import dwell
from closeloop.forecasting.bookings import open_deals_then, take_snapshot
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshotDeal
from tests.factories import Tenant
from tests.integrations.test_engine import import_rows
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of

OPENED = datetime(2026, 8, 3, 9, tzinfo=UTC)
CHANGED = datetime(2026, 9, 10, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def _then(db: Database, tenant: Tenant, day: date) -> dict[int, tuple[float, date, str]]:
    with frozen_at(NOW), db.reading(None, system=True) as session:
        return {
            deal.id: (deal.amount, deal.expected_close, deal.stage)
            for deal in open_deals_then(session, tenant.organization_id, day)
        }


def test_a_past_snapshot_uses_the_amount_and_close_date_of_that_day(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """Worked by hand: one deal opened on 3 August at ¥100,000 expected on 15 September, re-priced to
    ¥150,000 and re-dated to 20 October on 10 September. No closed deal to learn from: the win chance
    is one half (Laplace) lowered by the deal's own time open without a win — followed 29 days 15
    hours by the end of 1 September, e = that ÷ the year's 365 days of evidence, (0 + 1) / (e + 2)
    (forecasting/survival.py) — the slippage nil and there is no run-rate: the snapshot of 1 September
    expects ¥100,000 × that in September (pipeline ¥100,000), that of 1 October ¥150,000 × the same
    with 30 more days in October (¥150,000)."""
    api = Api(client, tenant["rep"])
    with frozen_at(OPENED):
        deal = api.create("opportunities", {"name": "CT 项目", "amount": "100000", "expected_close_date": "2026-09-15"})
    with frozen_at(CHANGED):
        changed = api.patch(
            "opportunities",
            deal["id"],
            {"amount": "150000", "expected_close_date": "2026-10-20"},
            version=deal["version"],
        )
        assert changed.status_code == 200, changed.text

    assert _then(db, tenant, date(2026, 9, 1)) == {deal["id"]: (100_000.0, date(2026, 9, 15), "prospecting")}
    assert _then(db, tenant, date(2026, 10, 1)) == {deal["id"]: (150_000.0, date(2026, 10, 20), "prospecting")}
    assert _then(db, tenant, date(2026, 8, 2)) == {}  # not opened yet

    with frozen_at(NOW), db.unit_of_work(None, system=True) as session:
        figures = {}
        for day, month in ((date(2026, 9, 1), "2026-09"), (date(2026, 10, 1), "2026-10")):
            snapshot = take_snapshot(session, tenant.organization_id, simulations=200, as_of=day)
            stored = session.execute(
                select(BookingsSnapshotDeal.amount, BookingsSnapshotDeal.expected_close_date).where(
                    BookingsSnapshotDeal.snapshot_id == snapshot.id
                )
            ).one()
            row = session.scalar(
                select(BookingsForecastRow).where(
                    BookingsForecastRow.snapshot_id == snapshot.id,
                    BookingsForecastRow.granularity == "month",
                    BookingsForecastRow.dimension == "total",
                    BookingsForecastRow.period == month,
                )
            )
            assert row is not None
            figures[month] = (tuple(stored), row.expected, row.pipeline, row.run_rate)
    september = 1 / ((datetime(2026, 9, 2, tzinfo=UTC) - OPENED) / timedelta(days=365) + 2)
    october = 1 / ((datetime(2026, 10, 2, tzinfo=UTC) - OPENED) / timedelta(days=365) + 2)
    assert figures == {
        "2026-09": (
            (Decimal("100000.00"), date(2026, 9, 15)),
            Decimal(str(round(100_000 * september, 2))),
            Decimal("100000.00"),
            Decimal("0.00"),
        ),
        "2026-10": (
            (Decimal("150000.00"), date(2026, 10, 20)),
            Decimal(str(round(150_000 * october, 2))),
            Decimal("150000.00"),
            Decimal("0.00"),
        ),
    }


def test_every_path_that_changes_a_deal_leaves_its_earlier_values_readable(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """The web form and an import change a deal's amount and close date as the API does: a snapshot
    of a day before the change sees the old values, one after it the new."""
    api = Api(client, tenant["sales_vp"])
    with frozen_at(OPENED):
        by_form = api.create("opportunities", {"name": "表单", "amount": "200000", "expected_close_date": "2026-09-20"})
        by_import = api.create(
            "opportunities",
            {"name": "导入", "amount": "300000", "expected_close_date": "2026-09-25", "external_ref": "OPP-77"},
        )
    with frozen_at(CHANGED):
        vp = browser(client, db, tenant["sales_vp"], locale="en")
        form = vp.get(f"/opportunities/{by_form['id']}/edit")
        saved = vp.post(
            f"/opportunities/{by_form['id']}/edit",
            data={
                "csrf": csrf_of(form.text),
                "version": str(by_form["version"]),
                "name": "表单",
                "stage": "prospecting",
                "amount": "210000",
                "currency": "CNY",
                "expected_close_date": "2026-11-05",
                "owner_id": str(tenant["sales_vp"].user_id),
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        report = import_rows(
            db,
            tenant["sales_vp"].actor,
            "opportunities",
            [["商机编号", "商机名称", "金额", "预计成交日期"], ["OPP-77", "导入", "330000", "2026/12/1"]],
        )
        assert (report.updated, report.invalid) == (1, 0)

    before = _then(db, tenant, date(2026, 9, 1))
    after = _then(db, tenant, date(2026, 10, 1))
    assert before == {
        by_form["id"]: (200_000.0, date(2026, 9, 20), "prospecting"),
        by_import["id"]: (300_000.0, date(2026, 9, 25), "prospecting"),
    }
    assert after == {
        by_form["id"]: (210_000.0, date(2026, 11, 5), "prospecting"),
        by_import["id"]: (330_000.0, date(2026, 12, 1), "prospecting"),
    }


def _closed_deal(db: Database, tenant: Tenant, *, days_in_proposal: int, won: bool, index: int) -> None:
    """A deal that spent ``days_in_proposal`` days at proposal and was then won or lost (closed in 2026-06)."""
    start = datetime(2026, 5, 1, 9, tzinfo=UTC) + timedelta(hours=index)
    proposal = start + timedelta(days=2)
    closed = proposal + timedelta(days=days_in_proposal)
    outcome = Stage.WON if won else Stage.LOST
    with db.unit_of_work(None, system=True) as session:
        deal = Opportunity(
            organization_id=tenant.organization_id,
            name=f"closed {index}",
            owner_id=tenant["rep"].user_id,
            stage=outcome,
            amount=Decimal(1000),
            opened_at=start,
            stage_changed_at=closed,
            closed_at=closed,
            expected_close_date=closed.date(),
            lost_reason=None if won else "价格",
        )
        session.add(deal)
        session.flush()
        moves = [
            (None, Stage.PROSPECTING, start, None),
            (Stage.PROSPECTING, Stage.PROPOSAL, proposal, 2 * 86_400),
            (Stage.PROPOSAL, outcome, closed, days_in_proposal * 86_400),
        ]
        for from_stage, to_stage, at, seconds in moves:
            session.add(
                StageChange(
                    organization_id=tenant.organization_id,
                    opportunity_id=deal.id,
                    from_stage=from_stage,
                    to_stage=to_stage,
                    changed_at=at,
                    duration_seconds=seconds,
                )
            )


def test_a_deal_that_has_sat_long_in_its_stage_gets_the_win_rate_of_deals_that_sat_as_long(
    db: Database, tenant: Tenant
) -> None:
    """Ten deals stayed 5 days at proposal and were won, ten stayed 40 days and were lost. Overall the
    stage wins (10 + 1) / (20 + 2) = 1/2; a deal 30 days at proposal is compared with the ten that
    stayed 40 days (all lost): (0 + 5 × 1/2) / (10 + 5) = 1/6. A fresh one keeps (10 + 2.5) / 25 = 1/2."""
    for index in range(20):
        _closed_deal(db, tenant, days_in_proposal=5 if index < 10 else 40, won=index < 10, index=index)
    with frozen_at(NOW), db.unit_of_work(None, system=True) as session:
        stays = dwell.stays(session, tenant.organization_id)
        assert stays[Stage.PROPOSAL].base_rate == pytest.approx(0.5)
        assert stays[Stage.PROPOSAL].rate(30) == pytest.approx(1 / 6)
        assert stays[Stage.PROPOSAL].rate(0) == pytest.approx(0.5)
        assert stays[Stage.PROPOSAL].rate(6) == pytest.approx(1 / 6)
        # prospecting: every deal left it after 2 days, won or lost alike
        assert stays[Stage.PROSPECTING].rate(30) == pytest.approx(0.5)
        assert stays[Stage.NEGOTIATION].days == ()
        for days_ago, name in ((1, "fresh"), (30, "stale")):
            entered = NOW - timedelta(days=days_ago)
            deal = Opportunity(
                organization_id=tenant.organization_id,
                name=name,
                owner_id=tenant["rep"].user_id,
                stage=Stage.PROPOSAL,
                amount=Decimal(10_000),
                opened_at=entered - timedelta(days=3),
                stage_changed_at=entered,
                expected_close_date=date(2026, 12, 15),
            )
            session.add(deal)
        session.flush()
        snapshot = take_snapshot(session, tenant.organization_id, simulations=100)
        probability = dict(
            session.execute(
                select(Opportunity.name, BookingsSnapshotDeal.probability)
                .join(Opportunity, Opportunity.id == BookingsSnapshotDeal.opportunity_id)
                .where(BookingsSnapshotDeal.snapshot_id == snapshot.id)
            ).all()
        )
    # The snapshot counts the two open deals' own stays too, as undecided (tenth session,
    # forecasting/survival.py). Entering proposal: at day 1 the fresh deal leaves the risk set, at
    # day 5 ten of the 21 left win, at day 30 the stale one leaves, at day 40 the rest are lost — a
    # win within the year 10/21, from 20 decided deals and two followed 1 and 30 days of the year's
    # 365, smoothed with a pseudo-deal each way. The fresh deal (1 day) follows its cohort from day
    # 1 — the same deals, the same 10/21, the open ones followed a day less — smoothed toward that
    # with five pseudo-deals; the stale one (30 days) is followed with the ten that stayed 40 days,
    # all lost: each day's cohort from day 6 on has no win, so its chance shrinks to nothing (the
    # closed deals alone still gave it 1/6 above).
    entering = 20 + 31 / 365
    start = (entering * 10 / 21 + 1) / (entering + 2)
    followed = 20 + 29 / 365
    assert probability["fresh"] == pytest.approx((followed * 10 / 21 + 5 * start) / (followed + 5))
    assert probability["stale"] < 1e-9
