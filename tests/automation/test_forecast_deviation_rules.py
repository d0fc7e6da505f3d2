"""Rules over reps on forecast deviation (dev set r006): written in plain Chinese, saved, run weekly;
"上周 / last week" is the last ISO week finished in the business time zone (the forecast the week
started with, from its snapshot's deals, against what the rep booked in it), a month or no window the
last finished month (the scorecards' own); the rep's regional manager gets one notice listing the
reps with their figures, each rep keeps a decision of their own; a backtest finds the same firings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from closeloop.automation import engine, metrics
from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.forecasting.bookings import take_snapshot
from closeloop.forecasting.scorecards import OwnerDeviation, owner_deviation, owner_week_deviation
from closeloop.org.models import User
from closeloop.org.notifications import Notification
from tests.factories import Tenant

R006 = "每周一早上9点，把上周预测偏差超过20%的销售名单发给各区域经理。"
MONDAY = datetime(2026, 11, 2, 9, 5, tzinfo=ZoneInfo("Asia/Shanghai"))  # the rule's 9 am, in the business time zone


def _two_deals_then_closed(db: Database, tenant: Tenant, *, due: date, snapshot_at: datetime, closed: datetime) -> int:
    """Each rep's 10,000 deal due on ``due``, a snapshot at ``snapshot_at`` that expects each at a
    half, then the rep wins theirs and rep2 loses theirs at ``closed``. Returns the organization id."""
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:  # the people were there before the snapshot
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
                expected_close_date=due,
            )
            for key in ("rep", "rep2")
        }
        session.add_all(deals.values())
    with frozen_at(snapshot_at), db.unit_of_work(None, system=True) as session:
        take_snapshot(session, org, simulations=300)
    with db.unit_of_work(None, system=True) as session:
        won, lost = (session.get(Opportunity, deals[key].id) for key in ("rep", "rep2"))
        assert won is not None
        assert lost is not None
        won.stage, won.closed_at = Stage.WON, closed
        lost.stage, lost.closed_at = Stage.LOST, closed
    return org


def _october(db: Database, tenant: Tenant) -> None:
    """A snapshot on 2 October expects each rep's 10,000 deal at a half; the rep wins theirs (100 %
    off), rep2 loses theirs and wins another of 5,500 (10 % off)."""
    org = _two_deals_then_closed(
        db,
        tenant,
        due=date(2026, 10, 20),
        snapshot_at=datetime(2026, 10, 2, 9, tzinfo=UTC),
        closed=datetime(2026, 10, 21, tzinfo=UTC),
    )
    with db.unit_of_work(None, system=True) as session:
        session.add(Opportunity(organization_id=org, name="another", owner_id=tenant["rep2"].user_id, stage=Stage.WON,
                                amount=Decimal(5_500), closed_at=datetime(2026, 10, 25, tzinfo=UTC)))  # fmt: skip


def _last_week(db: Database, tenant: Tenant) -> None:
    """A snapshot on 20 October expects each rep's 10,000 deal, due on 28 October, at a half in the
    week of 26 October – 1 November (Shanghai). The rep wins theirs on the 28th (100 % off); rep2
    loses theirs, wins 7,000 at 00:30 on Monday 26 October in Shanghai (still the 25th in UTC) and
    1,000 at 00:30 on Monday 2 November in Shanghai (the 1st in UTC, the next week there): 40 % off."""
    org = _two_deals_then_closed(
        db,
        tenant,
        due=date(2026, 10, 28),
        snapshot_at=datetime(2026, 10, 20, 9, tzinfo=UTC),
        closed=datetime(2026, 10, 28, 3, tzinfo=UTC),
    )
    with db.unit_of_work(None, system=True) as session:
        rep2 = tenant["rep2"].user_id
        for amount, closed in ((7_000, datetime(2026, 10, 25, 16, 30, tzinfo=UTC)),
                               (1_000, datetime(2026, 11, 1, 16, 30, tzinfo=UTC))):  # fmt: skip
            session.add(Opportunity(organization_id=org, name=f"won {amount}", owner_id=rep2, stage=Stage.WON,
                                    amount=Decimal(amount), closed_at=closed))  # fmt: skip


def test_r006_tells_the_regional_manager_once_of_every_rep_off_by_more_than_20_percent_last_week(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    _last_week(db, tenant)
    manager = tenant["manager"]
    parsed = client.post("/api/v1/rules/parse", json={"text": R006}, headers=manager.headers)
    assert parsed.status_code == 200, parsed.text
    definition = parsed.json()["rule"]
    assert definition["conditions"][0]["field_or_metric"] == "forecast_deviation"
    assert definition["conditions"][0]["window"] == "last_week"
    with frozen_at(MONDAY):
        tried = client.post("/api/v1/rules/backtest", json={"definition": definition, "days": 7},
                            headers=manager.headers)  # fmt: skip
    assert tried.status_code == 200, tried.text
    assert tried.json()["records"] == [
        {"record_type": "user", "record_id": tenant["rep"].user_id},
        {"record_type": "user", "record_id": tenant["rep2"].user_id},
    ]
    created = client.post(
        "/api/v1/rules", json={"name": "预测偏差", "definition": definition, "enabled": True}, headers=manager.headers
    )
    assert created.status_code == 201, created.text

    assert engine.run_schedules(db, now=MONDAY.replace(hour=8)) == 0  # not its hour
    assert engine.run_schedules(db, now=MONDAY) == 2
    assert engine.run_schedules(db, now=MONDAY.replace(minute=40)) == 0  # once per week

    with db.reading(None, system=True) as session:
        told = session.scalars(select(Notification).where(Notification.user_id == manager.user_id)).all()
        names = {key: session.get(User, tenant[key].user_id).display_name for key in ("rep", "rep2")}  # type: ignore[union-attr]
    (notice,) = told  # one notice listing the reps, not one per rep
    assert notice.title_zh == "规则提醒：预测偏差（2人）"
    lines = (notice.body_zh or "").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"- {names['rep']}：")
    assert "预测偏差超过20%（看到的值：100%，2026-W44期初预测5000.00，实际成交10000.00）" in lines[0]
    assert lines[1].startswith(f"- {names['rep2']}：")
    assert "预测偏差超过20%（看到的值：40%，2026-W44期初预测5000.00，实际成交7000.00）" in lines[1]
    assert notice.link == f"/automation/decisions?rule_id={created.json()['id']}"
    everyone = client.get("/api/v1/decisions?record_type=user", headers=manager.headers).json()["items"]
    assert sorted(d["record_id"] for d in everyone) == sorted([tenant["rep"].user_id, tenant["rep2"].user_id])
    body = client.get("/api/v1/decisions?record_type=user", headers=tenant["rep"].headers).json()
    (decision,) = body["items"]  # the rep reads the decision about themselves
    assert decision["record_id"] == tenant["rep"].user_id
    (condition,) = decision["conditions"]
    assert condition["seen"] == 100.0
    assert condition["detail"] == {
        "period": "2026-W44",
        "period_start": "2026-10-26",
        "period_end": "2026-11-02",
        "expected": "5000.00",
        "actual": "10000.00",
    }
    assert decision["actions"][0]["result"]["notified"] == [manager.user_id]


def test_last_week_is_the_iso_week_finished_in_shanghai(db: Database, tenant: Tenant) -> None:
    _last_week(db, tenant)
    rep2 = tenant["rep2"].user_id
    with db.reading(None, system=True) as session:

        def week(now: datetime) -> OwnerDeviation | None:
            return owner_week_deviation(session, tenant.organization_id, rep2, now=now, timezone="Asia/Shanghai")

        sunday_night = week(datetime(2026, 11, 1, 15, 59, tzinfo=UTC))  # 23:59 on Sunday 1 November there
        monday_early = week(datetime(2026, 11, 1, 16, 0, tzinfo=UTC))  # 00:00 on Monday 2 November there
        in_utc = owner_week_deviation(session, tenant.organization_id, rep2, now=MONDAY, timezone="UTC")
        # the week of 9 November: the 20 October snapshot is too old to stand for it, none was taken in it
        stale = week(datetime(2026, 11, 16, 1, tzinfo=UTC))
    assert sunday_night is not None
    assert (sunday_night.period, sunday_night.actual) == ("2026-W43", Decimal("0.00"))
    assert monday_early is not None
    assert (monday_early.period, monday_early.period_start, monday_early.period_end) == (
        "2026-W44",
        date(2026, 10, 26),
        date(2026, 11, 2),
    )
    assert (monday_early.expected, monday_early.actual) == (Decimal("5000.00"), Decimal("7000.00"))
    assert monday_early.rate == pytest.approx(0.4)
    assert in_utc is not None  # the same week counted in UTC days takes the other win
    assert (in_utc.period, in_utc.actual) == ("2026-W44", Decimal("1000.00"))
    assert stale is None


def test_without_a_window_or_over_last_month_the_month_is_read(db: Database, tenant: Tenant) -> None:
    _october(db, tenant)
    rep = tenant["rep"].user_id
    with db.unit_of_work(None, system=True) as session:
        person = session.get(User, rep)
        for window in (None, "last_month"):
            condition = {"field_or_metric": "forecast_deviation", "op": ">", "value": 20, "unit": "percent"}
            ctx = metrics.Context(session, tenant.organization_id, "user", person, MONDAY)
            seen = metrics.read(ctx, condition | ({"window": window} if window else {}))
            assert seen == 100.0
            assert ctx._cache[metrics.DETAIL]["period"] == "2026-10"


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
    (team,) = [
        item
        for item in scorecard["items"]
        if item["period"] == "2026-10" and item["manager_id"] == tenant["manager"].user_id
    ]
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
