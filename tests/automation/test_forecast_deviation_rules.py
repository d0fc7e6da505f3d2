"""Rules over reps on forecast deviation (dev set r006): written in plain Chinese, saved, run weekly;
the deviation is the forecasting scorecards' (the first snapshot of the last finished month against
what the rep booked in it); the rep's regional manager is told why; a backtest finds the same firing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from closeloop.automation import engine
from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.forecasting.bookings import take_snapshot
from closeloop.forecasting.scorecards import owner_deviation
from closeloop.org.models import User
from closeloop.org.notifications import Notification
from tests.factories import Tenant

R006 = "每周一早上9点，把上周预测偏差超过20%的销售名单发给各区域经理。"
MONDAY = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)


def _october(db: Database, tenant: Tenant) -> None:
    """A snapshot on 2 October expects each rep's 10,000 deal at a half; the rep wins theirs (100 %
    off), rep2 loses theirs and wins another of 5,500 (10 % off)."""
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:  # the people were there before October
        session.execute(
            update(User).where(tenant_clause(org, User)).values(created_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
        deals = {
            key: Opportunity(
                organization_id=org,
                name=key,
                owner_id=tenant[key].user_id,
                stage=Stage.NEGOTIATION,
                amount=Decimal(10_000),
                expected_close_date=date(2026, 10, 20),
            )
            for key in ("rep", "rep2")
        }
        session.add_all(deals.values())
    with frozen_at(datetime(2026, 10, 2, 9, tzinfo=UTC)), db.unit_of_work(None, system=True) as session:
        take_snapshot(session, org, simulations=300)
    with db.unit_of_work(None, system=True) as session:
        won, lost = (session.get(Opportunity, deals[key].id) for key in ("rep", "rep2"))
        assert won is not None
        assert lost is not None
        won.stage, won.closed_at = Stage.WON, datetime(2026, 10, 21, tzinfo=UTC)
        lost.stage, lost.closed_at = Stage.LOST, datetime(2026, 10, 21, tzinfo=UTC)
        session.add(Opportunity(organization_id=org, name="another", owner_id=tenant["rep2"].user_id, stage=Stage.WON,
                                amount=Decimal(5_500), closed_at=datetime(2026, 10, 25, tzinfo=UTC)))  # fmt: skip


def test_r006_notifies_the_regional_manager_of_each_rep_off_by_more_than_20_percent(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    _october(db, tenant)
    manager = tenant["manager"]
    parsed = client.post("/api/v1/rules/parse", json={"text": R006}, headers=manager.headers)
    assert parsed.status_code == 200, parsed.text
    definition = parsed.json()["rule"]
    assert definition["conditions"][0]["field_or_metric"] == "forecast_deviation"
    with frozen_at(MONDAY):
        tried = client.post("/api/v1/rules/backtest", json={"definition": definition, "days": 7},
                            headers=manager.headers)  # fmt: skip
    assert tried.status_code == 200, tried.text
    assert tried.json()["records"] == [{"record_type": "user", "record_id": tenant["rep"].user_id}]
    created = client.post(
        "/api/v1/rules", json={"name": "预测偏差", "definition": definition, "enabled": True}, headers=manager.headers
    )
    assert created.status_code == 201, created.text

    assert engine.run_schedules(db, now=MONDAY.replace(hour=8)) == 0  # not its hour
    assert engine.run_schedules(db, now=MONDAY) == 1
    assert engine.run_schedules(db, now=MONDAY.replace(minute=40)) == 0  # once per week

    with db.reading(None, system=True) as session:
        told = session.scalars(select(Notification).where(Notification.user_id == manager.user_id)).all()
    assert len(told) == 1
    assert "预测偏差超过20%(看到的值:100%,2026-10期初预测5000.00,实际成交10000.00)" in (told[0].body_zh or "")
    body = client.get("/api/v1/decisions?record_type=user", headers=tenant["rep"].headers).json()
    (decision,) = body["items"]  # the rep reads the decision about themselves
    assert decision["record_id"] == tenant["rep"].user_id
    (condition,) = decision["conditions"]
    assert condition["seen"] == 100.0
    assert condition["detail"]["period"] == "2026-10"
    assert decision["actions"][0]["result"]["notified"] == [manager.user_id]


def test_owner_deviation_is_the_scorecards_rate_and_rules_on_it_need_a_schedule(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    _october(db, tenant)
    with db.reading(None, system=True) as session:
        rep2 = owner_deviation(session, tenant.organization_id, tenant["rep2"].user_id, as_of=date(2026, 11, 2))
        before = owner_deviation(session, tenant.organization_id, tenant["rep2"].user_id, as_of=date(2026, 10, 31))
    assert rep2 is not None
    assert rep2.period == "2026-10"
    assert (rep2.expected, rep2.actual) == (Decimal("5000.00"), Decimal("5500.00"))
    assert rep2.rate == pytest.approx(0.1)
    assert before is None  # October had not finished
    with frozen_at(datetime(2026, 11, 3, tzinfo=UTC)):
        scorecard = client.get("/api/v1/forecasts/scorecards", headers=tenant["sales_vp"].headers).json()
    (team,) = [item for item in scorecard["items"] if item["period"] == "2026-10"]
    assert Decimal(team["expected"]) == 2 * Decimal("5000.00")  # the same rows, summed over the team
    on_event = {
        "trigger": {"kind": "event", "event": "order_placed"},
        "conditions": [{"field_or_metric": "forecast_deviation", "op": ">", "value": 20, "unit": "percent"}],
        "actions": [{"type": "notify", "target": "manager"}],
    }
    refused = client.post(
        "/api/v1/rules", json={"name": "x", "definition": on_event}, headers=tenant["manager"].headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "conditions.0.field_or_metric"
