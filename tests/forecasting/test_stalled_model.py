"""The trained win-probability model learned from closed deals only, so it cannot know that a deal
sitting in a stage for months may never close; its probability is multiplied by the chance that a
deal as long in its stage is decided at all within the year (the Aalen–Johansen incidence of a win
or a loss, the deals still open censored — forecasting/survival.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.core.clock import utcnow
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.forecasting import opportunities, survival
from closeloop.forecasting.bookings import take_snapshot
from closeloop.forecasting.models import BookingsSnapshotDeal, WinProbabilityModel
from closeloop.forecasting.survival import LOST, OPEN, WON, StageStays
from closeloop.forecasting.winprob import WinModel
from tests.factories import Tenant
from tests.forecasting.test_survival_and_trend import _negotiation
from tests.forecasting.test_win_probability_api import _deals, _get


def test_the_chance_of_a_decision_worked_by_hand() -> None:
    """20 deals won after 10 days in negotiation, 10 lost after 40, 30 stalled 200 days and open.
    Entering the stage: 30 of 60 decided within the year (the stalled ones censored at 200 days
    with no outcome after) — ½. Thirty days in: the 10 lost and 30 stalled, 10 of 40 decided — ¼.
    Fifty days in: only the stalled are left (the 58-day landmark's cohort) — nothing decided."""
    stays = _negotiation()
    assert stays.decided_probability(0.0) == pytest.approx(0.5)
    assert stays.decided_probability(30.0) == pytest.approx(0.25)
    assert stays.decided_probability(50.0) == 0.0
    # no stays: nothing says a deal may stall
    assert StageStays((), (), ()).decided_probability(10.0) == 1.0
    # a deal censored early leaves the risk set: 2 of the 3 followed to an outcome decided, the
    # third censored at 5 days before any outcome (Aalen–Johansen, not 2 / 4)
    few = StageStays((5.0, 10.0, 20.0, 30.0), (5.0, 10.0, 20.0, 30.0), (OPEN, WON, LOST, OPEN))
    assert few.decided_probability(0.0) == pytest.approx(1 - (2 / 3) * (1 / 2))
    history = {Stage.NEGOTIATION: stays}
    assert survival.decided(history, ["negotiation", "proposal"], [30.0, 30.0]) == [pytest.approx(0.25), 1.0]


def test_a_stalled_deal_is_not_given_the_model_s_closed_deal_chance(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """120 closed deals (each five days in its last stage) train the model; ten deals have sat in
    negotiation for 300 days and are still open, one for 60 days. Sixty days in, the cohort of the
    58-day landmark holds only open deals: nothing like it was decided, so the model's probability is
    multiplied by 0 — on the API and in the bookings snapshot alike. A deal that has just entered
    negotiation keeps the model's probability times the share of its cohort decided."""
    _deals(db, tenant)
    now = utcnow()
    ids = {}
    with db.unit_of_work(None, system=True) as session:
        for name, days in (*((f"stalled {index}", 300) for index in range(10)), ("sixty", 60), ("fresh", 1)):
            deal = Opportunity(
                organization_id=tenant.organization_id, name=name, owner_id=tenant["rep"].user_id,
                stage=Stage.NEGOTIATION, amount=Decimal(50000), margin=Decimal("44.00"),
                opened_at=now - timedelta(days=days + 5), stage_changed_at=now - timedelta(days=days),
            )  # fmt: skip
            session.add(deal)
            session.flush()
            ids[name] = deal.id
    with db.unit_of_work(None, system=True) as session:
        opportunities.retrain(session, tenant.organization_id)
    sixty = _get(client, tenant, "sales_vp", ids["sixty"], accept="*")  # no language asked: the VP's own
    fresh = _get(client, tenant, "sales_vp", ids["fresh"])
    with db.reading(None, system=True) as session:  # a closed deal under the trained model (a 500 once)
        won = session.scalar(
            select(Opportunity.id).where(
                Opportunity.organization_id == tenant.organization_id, Opportunity.stage == Stage.WON
            )
        )
    assert won is not None
    closed = _get(client, tenant, "rep", won)
    assert (closed["probability"], closed["closed"]) == (1.0, True)
    assert sixty["model"]["kind"] == "calibrated_lightgbm"  # type: ignore[index]
    assert sixty["model"]["decided_within_year"] == 0.0  # type: ignore[index]
    assert sixty["probability"] == 0.0
    # the sales VP reads Chinese: the first reason says why
    first = sixty["reasons"][0]  # type: ignore[index]
    assert first["feature"] == "decided_within_year"
    assert first["direction"] == "down"
    assert "已在商务谈判阶段停留 60 天" in first["text"]
    assert "一年内有结果（赢单或丢单）的占 0%" in first["text"]
    with db.unit_of_work(None, system=True) as session:
        stored = session.scalar(
            select(WinProbabilityModel).where(WinProbabilityModel.organization_id == tenant.organization_id)
        )
        assert stored is not None
        model = WinModel.loads(stored.blob)
        deals = list(
            session.scalars(
                select(Opportunity).where(Opportunity.id.in_([ids["sixty"], ids["fresh"]])).order_by(Opportunity.id)
            )
        )
        raw = [float(p) for p in model.predict(opportunities.features(session, tenant.organization_id, deals))]
        cohort = survival.stays(session, tenant.organization_id, cut=utcnow())[Stage.NEGOTIATION]
        decided = cohort.decided_probability(1.0)
        assert raw[0] > 0.3  # the model alone would count the stalled deal as likely
        assert 0.5 < decided < 1.0
        assert fresh["model"]["decided_within_year"] == pytest.approx(decided, abs=1e-4)  # type: ignore[index]
        assert float(str(fresh["probability"])) == pytest.approx(raw[1] * decided, abs=1e-4)
        snapshot = take_snapshot(session, tenant.organization_id, simulations=100)
        assert snapshot.method == "calibrated_lightgbm"
        given = dict(
            session.execute(
                select(BookingsSnapshotDeal.opportunity_id, BookingsSnapshotDeal.probability).where(
                    BookingsSnapshotDeal.snapshot_id == snapshot.id
                )
            ).all()
        )
        assert given[ids["sixty"]] == 0.0
        assert given[ids["fresh"]] == pytest.approx(raw[1] * decided, abs=1e-3)
