"""The bookings forecast end to end on a small organization: the daily snapshot task, the forecast,
accuracy and attribution APIs, categories, reach, masks and tenancy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.web.i18n import format_percent
from closeloop.worker import tasks
from tests.api.test_field_security import configure
from tests.factories import Tenant
from tests.web.test_settings_pages import browser

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def _deal(tenant: Tenant, owner: str, stage: Stage, amount: int, **values: Any) -> Opportunity:
    return Opportunity(
        organization_id=tenant.organization_id,
        name=f"{owner} {stage} {amount}",
        owner_id=tenant[owner].user_id,
        stage=stage,
        amount=Decimal(amount),
        **values,
    )


def _seed(db: Database, tenant: Tenant) -> dict[str, int]:
    """A year of won and lost deals (each won five days after its expected date, 20 days after it
    was opened), one deal won this month, and four open deals."""
    ids: dict[str, int] = {}
    with db.unit_of_work(None, system=True) as session:
        account = Account(organization_id=tenant.organization_id, name="老客户", region_id=tenant.region_id)
        session.add(account)
        session.flush()
        for index in range(48):
            closed = NOW - timedelta(days=10 + 7 * index)
            session.add(
                _deal(
                    tenant, "rep", Stage.WON if index % 4 else Stage.LOST, 1_000,
                    account_id=account.id, opened_at=closed - timedelta(days=20), closed_at=closed,
                    stage_changed_at=closed, expected_close_date=(closed - timedelta(days=5)).date(),
                )
            )  # fmt: skip
        won = _deal(tenant, "rep", Stage.WON, 4_000, account_id=account.id, opened_at=NOW - timedelta(days=30),
                    closed_at=NOW - timedelta(days=7), stage_changed_at=NOW - timedelta(days=7))  # fmt: skip
        session.add(won)
        open_deals = {
            "negotiation": _deal(tenant, "rep", Stage.NEGOTIATION, 10_000, expected_close_date=date(2026, 11, 15)),
            "proposal": _deal(tenant, "rep2", Stage.PROPOSAL, 20_000, expected_close_date=date(2026, 12, 10)),
            "prospecting": _deal(tenant, "rep", Stage.PROSPECTING, 5_000, expected_close_date=date(2026, 11, 18)),
            "vp": _deal(tenant, "sales_vp", Stage.NEGOTIATION, 7_000, expected_close_date=date(2026, 11, 12)),
        }
        for name, deal in open_deals.items():
            deal.account_id = account.id
            deal.opened_at = deal.stage_changed_at = NOW - timedelta(days=3)
            session.add(deal)
            session.flush()
            ids[name] = deal.id
        ids["account"] = account.id
    return ids


def _get(client: TestClient, tenant: Tenant, who: str, path: str, status: int = 200, *, accept: str = "en") -> Any:
    """The answer for ``who``, asking for ``accept`` (``*``: no language, the user's own)."""
    headers = {**tenant[who].headers, "Accept-Language": accept}
    response = client.get(f"/api/v1/forecasts/bookings{path}", headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def _by_period(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["period"]: item for item in body["items"]}


def test_the_bookings_forecast_from_snapshot_to_attribution(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _seed(db, tenant)
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    with frozen_at(NOW) as advance:
        assert _get(client, tenant, "sales_vp", "")["snapshot"] is None  # nothing is fitted on a read
        taken = tasks.snapshot_bookings_forecasts()
        assert tenant.organization_id in taken
        assert other_tenant.organization_id in taken

        body = _get(client, tenant, "sales_vp", "")
        assert body["snapshot"]["method"] == "stage_win_rate"
        assert body["snapshot"]["slippage_median_days"] == 5.0
        months = _by_period(body)
        assert list(months) == ["2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]
        november = months["2026-11"]
        assert Decimal(november["won_to_date"]) == 4_000
        # commit: won so far + negotiation; best case adds proposal (December's); pipeline every open deal
        assert Decimal(november["commit"]) == 4_000 + 10_000 + 7_000
        assert Decimal(november["best_case"]) == Decimal(november["commit"])
        assert Decimal(november["pipeline"]) == 4_000 + 10_000 + 5_000 + 7_000
        assert Decimal(months["2026-12"]["best_case"]) == 20_000
        for item in months.values():
            assert Decimal(item["low"]) <= Decimal(item["expected"]) <= Decimal(item["high"])
            # one basis: forecast = won so far + open expected + run-rate; commit ≤ best case ≤ pipeline
            summed = Decimal(item["won_to_date"]) + Decimal(item["open_expected"]) + Decimal(item["run_rate"])
            assert summed == Decimal(item["expected"])
            assert Decimal(item["commit"]) <= Decimal(item["best_case"]) <= Decimal(item["pipeline"])
        assert body["past_due"]["deals"] == 0
        assert Decimal(november["run_rate"]) > 0  # deals opened from now on and won within 20 days
        quarters = _by_period(_get(client, tenant, "sales_vp", "?granularity=quarter"))
        assert list(quarters) == ["2026-Q4", "2027-Q1"]

        owners = _get(client, tenant, "sales_vp", "?dimension=owner")["items"]
        assert {item["key"] for item in owners} >= {tenant["rep"].user_id, tenant["rep2"].user_id}
        regions = _get(client, tenant, "cfo", "?dimension=region&granularity=quarter")["items"]
        assert {item["key"] for item in regions} == {tenant.region_id}

        # a manager sees the owners in reach only, whatever dimension is asked for; a rep nothing
        seen = _get(client, tenant, "manager", "?dimension=region")
        assert seen["dimension"] == "owner"
        assert {item["key"] for item in seen["items"]} <= {tenant["rep"].user_id, tenant["rep2"].user_id}
        assert tenant["sales_vp"].user_id not in {item["key"] for item in seen["items"]}
        _get(client, tenant, "rep", "", status=403)
        # the other organization reads its own (empty) snapshot only
        theirs = _get(client, other_tenant, "sales_vp", "?dimension=owner")
        assert theirs["snapshot"]["id"] != body["snapshot"]["id"]
        assert _get(client, other_tenant, "sales_vp", f"?snapshot_id={body['snapshot']['id']}", status=404)

        # three weeks on: the negotiation deal won at 12,000, the prospecting one lost, a new
        # account won 3,000, the VP's deal slipped into December
        advance(timedelta(days=22))
        with db.unit_of_work(None, system=True) as session:
            won = session.get(Opportunity, ids["negotiation"])
            assert won is not None
            won.stage, won.amount, won.closed_at = Stage.WON, Decimal(12_000), NOW + timedelta(days=5)
            lost = session.get(Opportunity, ids["prospecting"])
            assert lost is not None
            lost.stage, lost.closed_at = Stage.LOST, NOW + timedelta(days=6)
            vp = session.get(Opportunity, ids["vp"])
            assert vp is not None
            vp.stage, vp.closed_at = Stage.WON, datetime(2026, 12, 1, 9, tzinfo=UTC)
            fresh = Account(organization_id=tenant.organization_id, name="新客户", region_id=tenant.region_id,
                            created_at=NOW + timedelta(days=2))  # fmt: skip
            session.add(fresh)
            session.flush()
            session.add(_deal(tenant, "rep2", Stage.WON, 3_000, account_id=fresh.id, opened_at=NOW + timedelta(days=2),
                              closed_at=NOW + timedelta(days=8), stage_changed_at=NOW + timedelta(days=8)))  # fmt: skip

        accuracy = _get(client, tenant, "sales_vp", "/accuracy")["items"]
        november_accuracy = next(item for item in accuracy if item["period"] == "2026-11")
        assert november_accuracy["complete"] is True
        assert Decimal(november_accuracy["actual"]) == 4_000 + 12_000 + 3_000
        assert Decimal(november_accuracy["expected"]) == Decimal(november["expected"])

        explained = _get(client, tenant, "sales_vp", "/attribution?period=2026-11")
        assert Decimal(explained["actual"]) == 19_000
        # the attribution starts from the stored forecast (to the cent)
        assert abs(Decimal(explained["forecast"]) - Decimal(november["expected"])) <= Decimal("0.05")
        parts = {item["driver"]: item for item in explained["items"]}
        total = sum(Decimal(item["contribution"]) for item in explained["items"])
        assert abs(total - Decimal(explained["gap"])) <= Decimal("0.05")
        assert sum(item["share"] for item in explained["items"]) == pytest.approx(1.0, abs=1e-3)
        assert Decimal(parts["amount_change"]["contribution"]) == 2_000
        assert Decimal(parts["new_accounts"]["contribution"]) == 3_000
        assert Decimal(parts["close_date"]["contribution"]) < 0  # the VP's deal slipped into December
        assert explained["not_measured"] == []
        in_chinese = _get(client, tenant, "sales_vp", "/attribution?period=2026-11", accept="*")  # the VP reads zh
        assert any("新客户" in item["label"] for item in in_chinese["items"])
        _get(client, tenant, "sales_vp", "/attribution?period=2025-01", status=422)

        # the page reads the same snapshot, in both languages, with the attribution of the chosen period
        page = browser(client, db, tenant["sales_vp"], locale="en").get("/forecasts?dimension=owner&period=2026-11")
        assert page.status_code == 200, page.text
        assert "Bookings forecast" in page.text
        assert 'id="attribution-table"' in page.text
        assert "New accounts" in page.text
        assert "19,000" in page.text  # what was booked in November
        # the deviation rate carries its direction: + booked more than forecast, − less
        sign = "−" if Decimal(november_accuracy["error"]) < 0 else "+"
        assert sign + format_percent(november_accuracy["error_rate"], "en") in page.text
        chinese = browser(client, db, tenant["sales_vp"], locale="zh_CN").get("/forecasts")
        assert "签约额预测" in chinese.text
        assert "新客户" in chinese.text
        assert 'href="/forecasts"' in chinese.text  # in the navigation
        rep_page = browser(client, db, tenant["rep"], locale="en").get("/forecasts")
        assert rep_page.status_code == 403
        assert 'href="/forecasts"' not in browser(client, db, tenant["rep"], locale="en").get("/").text

        # a mask on opportunity.amount takes every forecast figure away from the role
        configure(client, tenant, "opportunity", "amount", {"manager": {"read": False}})
        _get(client, tenant, "manager", "", status=403)
        _get(client, tenant, "manager", "/accuracy", status=403)
        _get(client, tenant, "manager", "/attribution?period=2026-11", status=403)
        masked_page = browser(client, db, tenant["manager"], locale="en").get("/forecasts")
        assert masked_page.status_code == 403
        assert "19,000" not in masked_page.text


def test_past_due_deals_spread_by_the_slippage_of_as_late_wins_or_are_shown_apart(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _seed(db, tenant)  # every won deal closed five days after its expected date
    with db.unit_of_work(None, system=True) as session:
        for name, days in (("three_days_late", 3), ("a_month_late", 30)):
            deal = _deal(
                tenant, "rep", Stage.NEGOTIATION, 50_000, expected_close_date=(NOW - timedelta(days=days)).date()
            )
            deal.account_id, deal.opened_at, deal.stage_changed_at = ids["account"], NOW - timedelta(days=60), NOW
            session.add(deal)
            session.flush()
            ids[name] = deal.id
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    with frozen_at(NOW):
        tasks.snapshot_bookings_forecasts()
        body = _get(client, tenant, "sales_vp", "")
        late = body["past_due"]
        assert late["deals"] == 2
        assert Decimal(late["amount"]) == 100_000
        # three days late closes like the wins did, five days after its date (November 12th): this
        # month; a month late is later than any win ever was: in no period, listed for re-dating
        assert (late["beyond_history_deals"], late["longest_slip_days"]) == (1, 5)
        assert [deal["opportunity_id"] for deal in late["beyond_history"]] == [ids["a_month_late"]]
        november = _by_period(body)["2026-11"]
        assert Decimal(november["commit"]) == 4_000 + 10_000 + 7_000 + 50_000
        quarters = _by_period(_get(client, tenant, "sales_vp", "?granularity=quarter"))
        # the quarters' pipeline: won so far (three 1,000 wins in October, 4,000 in November) and every
        # open deal but the one beyond history
        assert Decimal(quarters["2026-Q4"]["pipeline"]) + Decimal(quarters["2027-Q1"]["pipeline"]) == (
            3 * 1_000 + 4_000 + 10_000 + 20_000 + 5_000 + 7_000 + 50_000
        )
        # a manager sees the same count within reach (the deals are a rep's); the page lists the deal
        assert _get(client, tenant, "manager", "")["past_due"]["deals"] == 2
        page = browser(client, db, tenant["sales_vp"], locale="zh_CN").get("/forecasts")
        assert page.status_code == 200
        assert "已过预计成交日期" in page.text
        assert f"/opportunities/{ids['a_month_late']}" in page.text
        assert f"/opportunities/{ids['three_days_late']}" not in page.text
