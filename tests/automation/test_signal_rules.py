"""FC-4 signal triggers through the automation engine: "an account searched 椎间孔镜配件 on 3
consecutive days → push the product comparison to its rep and reserve 20 units". Signals come in by
the CLI import as ``signal.recorded`` outbox events; the worker's drain checks the streak, fires once
per streak, tells the rep with the comparison's link, and the reservation waits out the undo window
(cancelled → none; expired → one, held against the dealer stock with the most units available)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from closeloop.automation import engine
from closeloop.automation.models import Decision, PendingAction
from closeloop.cli import forecast_commands
from closeloop.cli.main import app as cli
from closeloop.core.clock import frozen_at, utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.products.models import Product
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.forecasting import signals
from closeloop.forecasting.models import DealerStock, StockReservation
from closeloop.org.notifications import Notification
from tests.factories import Tenant

COMPARISON = "/knowledge?q=椎间孔镜配件+对比"
RULE: dict[str, Any] = {
    "trigger": {"kind": "event", "event": "signal_recorded", "keyword": "椎间孔镜配件"},
    "conditions": [
        {"field_or_metric": "keyword_streak", "op": "streak", "value": 3, "unit": "day", "keyword": "椎间孔镜配件"}
    ],
    "actions": [
        {"type": "notify", "target": "account_owner",
         "params": {"content": "椎间孔镜配件产品对比", "link": COMPARISON}},
        {"type": "reserve_stock", "target": "product:ZJK-01", "params": {"quantity": 20}},
    ],
}  # fmt: skip


@pytest.fixture(autouse=True)
def _morning_in_shanghai() -> Iterator[None]:
    """Streaks count the days of the business time zone (Asia/Shanghai): the tests that write dates
    run at a moment when the UTC day and the Shanghai day are the same one."""
    with frozen_at(datetime(2026, 11, 20, 4, tzinfo=UTC)):
        yield


def _world(db: Database, tenant: Tenant) -> dict[str, int]:
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:
        hospitals = [
            Account(organization_id=org, name=name, owner_id=tenant[owner].user_id, region_id=tenant.region_id)
            for name, owner in (("协和医院", "rep"), ("仁济医院", "rep2"))
        ]
        dealers = [
            Account(organization_id=org, name=name, region_id=tenant.region_id) for name in ("经销商甲", "经销商乙")
        ]
        product = Product(organization_id=org, name="椎间孔镜配件", code="ZJK-01", lead_time_days=14)
        session.add_all([*hospitals, *dealers, product])
        session.flush()
        stock = [
            DealerStock(organization_id=org, account_id=dealer.id, product_id=product.id, on_hand=Decimal(on_hand))
            for dealer, on_hand in zip(dealers, (15, 30), strict=True)
        ]
        session.add_all(stock)
        session.flush()
        return {"xiehe": hospitals[0].id, "renji": hospitals[1].id, "stock_b": stock[1].id}


def _import(db: Database, tenant: Tenant, tmp_path: Path, rows: list[str]) -> None:
    sheet = tmp_path / "signals.csv"
    sheet.write_text("account,keyword,occurred_at,source\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["forecast", "import-signals", str(sheet), "--org", str(tenant.organization_id)])
    assert result.exit_code == 0, result.output


def test_three_days_in_a_row_tell_the_rep_and_reserve_once_after_the_undo_window(
    client: TestClient, db: Database, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    ids = _world(db, tenant)
    created = client.post("/api/v1/rules", json={"name": "搜索三天", "definition": RULE, "enabled": True,
                                                  "undo_seconds": 60}, headers=tenant["manager"].headers)  # fmt: skip
    assert created.status_code == 201, created.text
    engine.drain(db)  # what came before
    today = utcnow().date()
    days = [(today - timedelta(days=n)).isoformat() for n in (3, 2, 1, 0)]
    _import(db, tenant, tmp_path, [
        f"协和医院,椎间孔镜配件,{days[0]},site_search",   # 1
        f"协和医院,椎间孔镜配件,{days[1]},site_search",   # 2
        f"协和医院,椎间孔镜配件,{days[2]},site_search",   # 3: fires
        f"协和医院,椎间孔镜配件,{days[2]},inquiry_form",  # same day again: no second firing
        f"协和医院,椎间孔镜配件,{days[3]},site_search",   # 4: the same streak, no second firing
        f"仁济医院,椎间孔镜配件,{days[0]},site_search",   # 1
        f"仁济医院,椎间孔镜配件,{days[2]},site_search",   # a day missed: 1
        f"仁济医院,别的配件,{days[3]},site_search",       # another keyword
    ])  # fmt: skip
    assert engine.drain(db) == 8
    with db.reading(None, system=True) as session:
        (decision,) = session.scalars(select(Decision).where(tenant_clause(tenant.organization_id, Decision))).all()
        told = session.scalars(select(Notification).where(Notification.user_id == tenant["rep"].user_id)).all()
        (pending,) = session.scalars(select(PendingAction)).all()
    assert (decision.record_type, decision.record_id) == ("account", ids["xiehe"])
    assert decision.conditions[0]["seen"] == 3
    assert decision.conditions[0]["detail"]["streak_start"] == days[0]
    assert "连续搜索天数「椎间孔镜配件」连续达到3天" in decision.why_zh
    assert [(n.link, (n.body_zh or "").splitlines()[0]) for n in told] == [(COMPARISON, "椎间孔镜配件产品对比")]
    assert pending.status == "pending"

    assert engine.run_due_actions(db, now=utcnow() + timedelta(seconds=30)) == 0  # still in its undo window
    assert engine.run_due_actions(db, now=utcnow() + timedelta(seconds=61)) == 1
    assert engine.run_due_actions(db, now=utcnow() + timedelta(seconds=62)) == 0  # done once
    with db.reading(None, system=True) as session:
        (held,) = session.scalars(select(StockReservation)).all()
        stock = session.get(DealerStock, ids["stock_b"])
        assert stock is not None
        left = signals.available(session, tenant.organization_id, stock)
    assert (held.account_id, held.dealer_stock_id, held.quantity, held.status) == (
        ids["xiehe"], ids["stock_b"], Decimal(20), "active",
    )  # fmt: skip
    assert left == Decimal(10)  # 30 on hand, 20 held


def test_a_cancelled_reservation_holds_nothing_and_short_stock_is_refused_saying_how_much(
    client: TestClient, db: Database, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    ids = _world(db, tenant)
    client.post("/api/v1/rules", json={"name": "搜索三天", "definition": RULE, "enabled": True, "undo_seconds": 60},
                headers=tenant["manager"].headers)  # fmt: skip
    today = utcnow().date()
    _import(db, tenant, tmp_path, [f"仁济医院,椎间孔镜配件,{today - timedelta(days=n)},site_search" for n in (2, 1, 0)])
    engine.drain(db)
    (pending,) = client.get("/api/v1/pending-actions", headers=tenant["manager"].headers).json()["items"]
    cancelled = client.post(f"/api/v1/pending-actions/{pending['id']}/cancel", headers=tenant["manager"].headers)
    assert cancelled.status_code == 200, cancelled.text
    assert engine.run_due_actions(db, now=utcnow() + timedelta(seconds=61)) == 0
    with db.unit_of_work(None, system=True) as session:
        assert session.scalars(select(StockReservation)).all() == []
        with pytest.raises(ValidationFailed) as short:
            signals.reserve(session, tenant.organization_id, account_id=ids["renji"], product="ZJK-01",
                            quantity=Decimal(31), reason="test")  # fmt: skip
    assert "only 30 units of 椎间孔镜配件 are available" in short.value.message
    bad = {**RULE, "conditions": [{"field_or_metric": "keyword_streak", "op": "streak", "value": 3, "keyword": ""}]}
    refused = client.post("/api/v1/rules", json={"name": "x", "definition": bad}, headers=tenant["manager"].headers)
    assert refused.json()["errors"][0]["field"] == "conditions.0.keyword"


def test_a_streak_counts_shanghai_days_across_midnight(
    client: TestClient, db: Database, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    ids = _world(db, tenant)
    with frozen_at(datetime(2026, 11, 19, 16, 45, tzinfo=UTC)):  # 00:45 on 20 November in Shanghai
        created = client.post("/api/v1/rules", json={"name": "搜索三天", "definition": RULE, "enabled": True},
                              headers=tenant["manager"].headers)  # fmt: skip
        assert created.status_code == 201, created.text
        engine.drain(db)
        _import(db, tenant, tmp_path, [
            "协和医院,椎间孔镜配件,2026-11-17T16:30:00,site_search",  # 00:30 on the 18th there (the 17th in UTC)
            "协和医院,椎间孔镜配件,2026-11-19T15:30:00,site_search",  # 23:30 on the 19th there
            "协和医院,椎间孔镜配件,2026-11-19T16:30:00,site_search",  # 00:30 on the 20th there: the third day
        ])  # fmt: skip
        assert engine.drain(db) == 3
        with db.reading(None, system=True) as session:
            (decision,) = session.scalars(select(Decision).where(tenant_clause(tenant.organization_id, Decision)))
            now = utcnow()
            local = signals.keyword_streak(session, tenant.organization_id, ids["xiehe"], "椎间孔镜配件", now)
            in_utc = signals.keyword_streak(
                session, tenant.organization_id, ids["xiehe"], "椎间孔镜配件", now, timezone="UTC"
            )
    assert decision.conditions[0]["seen"] == 3
    assert decision.conditions[0]["detail"]["streak_start"] == "2026-11-18"
    assert local == (3, date(2026, 11, 18))
    assert in_utc == (1, date(2026, 11, 19))  # counted in UTC days the 18th had no search
