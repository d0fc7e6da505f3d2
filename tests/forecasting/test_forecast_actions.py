"""Forecasts that act (FC-4) and scorecards (FC-5): a replenishment quantity worked by hand, the
incentive split, the stock import, and the data-source report on a small organization."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from closeloop.cli import forecast_commands
from closeloop.cli.main import app as cli
from closeloop.core.clock import frozen_at
from closeloop.core.errors import ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.products.models import Product
from closeloop.db.session import Database
from closeloop.forecasting.actions import allocate, import_stock, replenishment
from closeloop.forecasting.bookings import take_snapshot
from tests.factories import Tenant
from tests.web.test_settings_pages import browser

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def test_a_replenishment_quantity_worked_by_hand() -> None:
    # weekly demand 10, 14, 10, 14: mean 12, sample sd √(16/3) = 2.309; lead 14 + review 7 days = 3 weeks
    plan = replenishment([10, 14, 10, 14], on_hand=20, on_order=5, lead_days=14, review_days=7)
    assert plan.weekly_mean == 12
    assert plan.weekly_sd == pytest.approx(math.sqrt(16 / 3))
    # safety stock 1.645 × 2.309 × √3 = 1.645 × 4 = 6.58; order-up-to 12 × 3 + 6.58 = 42.58
    assert plan.safety_stock == pytest.approx(6.58)
    assert plan.order_up_to == pytest.approx(42.58)
    assert plan.suggested == 18  # ⌈42.58 − 20 − 5⌉
    assert replenishment([10, 14, 10, 14], on_hand=60, on_order=0, lead_days=14).suggested == 0


def test_the_incentive_pool_splits_by_upside_to_the_cent() -> None:
    parts = allocate(Decimal("1000.00"), {1: 300.0, 2: 100.0, 3: -50.0, None: 200.0})
    assert parts == {1: Decimal("500.00"), 2: Decimal("166.67"), 3: Decimal("0.00"), None: Decimal("333.33")}
    assert sum(parts.values()) == Decimal("1000.00")
    assert set(allocate(Decimal(10), {1: 0.0, 2: -1.0}).values()) == {Decimal("0.00")}
    # every part written with its cents, a round one too (2524.00, not 2524)
    assert [str(part) for part in allocate(Decimal(100000), {1: 0.02524, 2: 0.97476}).values()] == [
        "2524.00",
        "97476.00",
    ]


def _dealer(db: Database, tenant: Tenant) -> tuple[int, int]:
    """A dealer account owned by the rep, ordering 10 or 14 units of one product every week."""
    with db.unit_of_work(None, system=True) as session:
        dealer = Account(organization_id=tenant.organization_id, name="经销商甲", owner_id=tenant["rep"].user_id,
                         region_id=tenant.region_id, external_ref="D-001")  # fmt: skip
        product = Product(organization_id=tenant.organization_id, name="椎间孔镜配件", code="ZJK-01", lead_time_days=14)
        session.add_all([dealer, product])
        session.flush()
        for week in range(13):
            ordered = NOW - timedelta(days=7 * week + 3)
            order = Order(organization_id=tenant.organization_id, number=f"SO-{week}", account_id=dealer.id,
                          owner_id=tenant["rep"].user_id, ordered_at=ordered, total=Decimal(0))  # fmt: skip
            session.add(order)
            session.flush()
            quantity = Decimal(10 if week % 2 else 14)
            line = OrderLine(
                organization_id=tenant.organization_id,
                order_id=order.id,
                position=1,
                product_id=product.id,
                quantity=quantity,
                unit_price=Decimal(1),
                amount=quantity,
            )
            session.add(line)
        return dealer.id, product.id


def test_stock_import_replenishment_incentives_and_data_sources(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dealer, product = _dealer(db, tenant)
    with frozen_at(NOW):
        with db.unit_of_work(None, system=True) as session:
            with pytest.raises(ValidationFailed) as refused:
                import_stock(
                    session, tenant.organization_id, [{"account": "nobody", "product": "ZJK-01", "on_hand": "1"}]
                )
            assert "line 2" in refused.value.message
            report = {
                "account": "D-001",
                "product": "ZJK-01",
                "on_hand": "20",
                "on_order": "5",
                "reported_at": "2026-10-01",
            }
            assert import_stock(session, tenant.organization_id, [report]) == 1
        answer = client.get("/api/v1/forecasts/replenishment", headers=tenant["manager"].headers)
        assert answer.status_code == 200, answer.text
        (item,) = answer.json()["items"]
        assert (item["account_id"], item["product_id"], item["lead_days"]) == (dealer, product, 14)
        # 13 weeks of 14, 10, 14, …: mean 12.154, so the order-up-to level covers 3 weeks plus safety stock
        assert item["weekly_demand"] == pytest.approx(158 / 13, abs=1e-3)
        assert item["suggested"] == math.ceil(item["order_up_to"] - 25)
        assert client.get("/api/v1/forecasts/replenishment", headers=tenant["rep"].headers).status_code == 403
        theirs = client.get("/api/v1/forecasts/replenishment", headers=other_tenant["sales_vp"].headers)
        assert theirs.json()["items"] == []

        # the stock report is six weeks old: the dealer is listed as stale
        sources = client.get("/api/v1/forecasts/data-sources", headers=tenant["sales_vp"].headers).json()
        assert [row["account_id"] for row in sources["stale_dealers"]] == [dealer]
        status = {row["source"]: row["status"] for row in sources["items"]}
        assert status["orders"] in {"ok", "late"}
        assert status["forecast_snapshots"] == "no_data"

    # the CLI import goes through the same function (here on the test's own database)
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    sheet = tmp_path / "stock.csv"
    sheet.write_text("account,product,on_hand,on_order,lead_time_days\n经销商甲,ZJK-01,30,0,21\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["forecast", "import-stock", str(sheet), "--org", str(tenant.organization_id)])
    assert result.exit_code == 0, result.output
    lead = client.get("/api/v1/forecasts/replenishment", headers=tenant["sales_vp"].headers).json()["items"][0]
    assert (lead["on_hand"], lead["lead_days"]) == ("30.000", 21)

    # an incentive pool over the latest snapshot's regions (the whole organization in reach only)
    with db.unit_of_work(None, system=True) as session:
        session.add(Opportunity(organization_id=tenant.organization_id, name="open", owner_id=tenant["rep"].user_id,
                                account_id=dealer, stage=Stage.PROPOSAL, amount=Decimal(50_000),
                                expected_close_date=NOW.date() + timedelta(days=10)))  # fmt: skip
    with frozen_at(NOW), db.unit_of_work(None, system=True) as session:
        take_snapshot(session, tenant.organization_id, simulations=300)
    with frozen_at(NOW):
        split = client.get("/api/v1/forecasts/incentives?pool=10000", headers=tenant["sales_vp"].headers)
        assert split.status_code == 200, split.text
        body = split.json()
        assert body["period"] == "2026-Q4"
        assert "upside" in body["rule"]["en"]
        assert sum(Decimal(item["allocation"]) for item in body["items"]) == Decimal("10000.00")
        assert (
            client.get("/api/v1/forecasts/incentives?pool=10000", headers=tenant["manager"].headers).status_code == 403
        )
        assert client.get("/api/v1/forecasts/incentives?pool=-1", headers=tenant["sales_vp"].headers).status_code == 422
        scorecards = client.get("/api/v1/forecasts/scorecards", headers=tenant["director"].headers)
        assert scorecards.status_code == 200
        assert scorecards.json()["items"] == []  # no period has finished since the first snapshot

        # the forecast page shows the same suggestion, the split with its rule, the data sources
        page = browser(client, db, tenant["sales_vp"], locale="zh_CN").get("/forecasts?pool=10000")
        assert page.status_code == 200, page.text
        assert "经销商甲" in page.text
        same = client.get("/api/v1/forecasts/replenishment", headers=tenant["sales_vp"].headers).json()["items"][0]
        assert f"<strong>{same['suggested']}</strong>" in page.text
        assert 'id="incentive-table"' in page.text
        assert "上行空间 = 80% 区间上限" in page.text
        assert "数据源稳定性" in page.text
        manager_page = browser(client, db, tenant["manager"], locale="en").get("/forecasts?pool=10000")
        assert manager_page.status_code == 200
        assert 'id="incentive-table"' not in manager_page.text
        assert "Replenishment suggestions" in manager_page.text


def test_deviation_rate_per_manager(client: TestClient, db: Database, tenant: Tenant) -> None:
    """A snapshot at the start of October expects the rep's open deal; November begins; the rate is
    |booked − expected| ÷ expected for the manager's team."""
    with db.unit_of_work(None, system=True) as session:
        deal = Opportunity(organization_id=tenant.organization_id, name="d", owner_id=tenant["rep"].user_id,
                           stage=Stage.NEGOTIATION, amount=Decimal(10_000),
                           expected_close_date=date(2026, 10, 20))  # fmt: skip
        session.add(deal)
        session.flush()
        deal_id = deal.id
    with frozen_at(datetime(2026, 10, 2, 9, tzinfo=UTC)), db.unit_of_work(None, system=True) as session:
        taken = take_snapshot(session, tenant.organization_id, simulations=300)
        assert taken.method == "stage_win_rate"
    with db.unit_of_work(None, system=True) as session:
        won = session.get(Opportunity, deal_id)
        assert won is not None
        won.stage, won.closed_at = Stage.WON, datetime(2026, 10, 21, tzinfo=UTC)
    with frozen_at(datetime(2026, 11, 3, tzinfo=UTC)):
        body = client.get("/api/v1/forecasts/scorecards", headers=tenant["sales_vp"].headers).json()
        mine = client.get("/api/v1/forecasts/scorecards", headers=tenant["manager"].headers).json()
    october = [item for item in body["items"] if item["period"] == "2026-10"]
    # the manager's team and the director's (everyone reporting to them, directly or not): the rep is in both
    assert [row["manager_id"] for row in october] == sorted([tenant["manager"].user_id, tenant["director"].user_id])
    for row in october:
        assert Decimal(row["actual"]) == 10_000
        assert Decimal(row["expected"]) == Decimal(5_000)  # a new organization's stage win rate is one half
        assert row["deviation_rate"] == pytest.approx(1.0)
    # the manager sees her own team whole and no partial row for her director's
    assert [item for item in mine["items"] if item["period"] == "2026-10"] == [
        row for row in october if row["manager_id"] == tenant["manager"].user_id
    ]
