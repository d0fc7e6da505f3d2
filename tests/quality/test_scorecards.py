"""Team scorecards (issue #7 item 6 with FC-5): the data-quality KPIs of each manager's team, with
their history, next to the team's forecast deviation — through the API and the page, each person
seeing their own reach (a manager their team, the VP every team, a rep their own figures only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.forecasting.bookings import take_snapshot
from tests.factories import Tenant
from tests.quality.conftest import Scan
from tests.samples import Api
from tests.web.test_settings_pages import browser

SCANNED = datetime(2026, 11, 3, 9, tzinfo=UTC)


def _world(client: TestClient, db: Database, tenant: Tenant, scan: Scan) -> None:
    """The rep's October deal is forecast at 5,000 and booked at 10,000 (deviation 100 %); the rep
    owns 3 contacts (one without a mobile), 1 account and 1 late-stage deal without an amount —
    2 of 5 records incomplete; rep2 owns 1 account without an industry. Scanned twice, a day apart."""
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:
        deal = Opportunity(organization_id=org, name="d", owner_id=tenant["rep"].user_id, stage=Stage.NEGOTIATION,
                           amount=Decimal(10_000), expected_close_date=date(2026, 10, 20))  # fmt: skip
        session.add(deal)
        session.flush()
        deal_id = deal.id
    with frozen_at(datetime(2026, 10, 2, 9, tzinfo=UTC)), db.unit_of_work(None, system=True) as session:
        take_snapshot(session, org, simulations=200)
    with db.unit_of_work(None, system=True) as session:
        won = session.get(Opportunity, deal_id)
        assert won is not None
        won.stage, won.closed_at = Stage.WON, datetime(2026, 10, 21, tzinfo=UTC)
        session.add(Opportunity(organization_id=org, name="无金额", owner_id=tenant["rep"].user_id,
                                stage=Stage.PROPOSAL, expected_close_date=date(2026, 12, 20)))  # fmt: skip
    rep, rep2 = Api(client, tenant["rep"]), Api(client, tenant["rep2"])
    with frozen_at(SCANNED) as advance:
        account = rep.create("accounts", {"name": "协和医院", "industry": "医院"})
        for index, mobile in enumerate(["13800138000", "13900139000", None]):
            rep.create(
                "contacts",
                {
                    "name": f"联系人{index}",
                    "account_id": account["id"],
                    "mobile": mobile,
                    "title_confirmed_on": "2026-10-01",
                },
            )
        rep2.create("accounts", {"name": "瑞金医院"})
        scan(org)
        advance(timedelta(days=1))
        scan(org)


@pytest.fixture
def world(client: TestClient, db: Database, tenant: Tenant, scan: Scan) -> Tenant:
    _world(client, db, tenant, scan)
    return tenant


def _get(client: TestClient, tenant: Tenant, who: str, **params: object) -> dict[str, Any]:
    with frozen_at(SCANNED + timedelta(days=2)):
        response = Api(client, tenant[who]).request("GET", "/scorecards/teams", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_manager_sees_their_team_quality_with_history_beside_the_deviation(client: TestClient, world: Tenant) -> None:
    body = _get(client, world, "manager")
    assert (body["scope"], body["forecast_hidden"]) == ("team", None)
    (row,) = body["items"]  # the director's team is above the manager's reach
    assert row["manager_id"] == world["manager"].user_id
    quality = row["quality"]
    # rep: 2 of 5 records incomplete; rep2: 1 of 1 — 3 of 6
    assert quality["completeness"] == 0.5
    assert quality["title_freshness"] == 1.0
    assert quality["duplicate_rate"] == 0.0
    assert [point["completeness"] for point in row["quality_history"]] == [0.5, 0.5]
    assert row["forecast"]["period"] == "2026-10"
    assert Decimal(row["forecast"]["actual"]) == 10_000
    assert row["forecast"]["deviation_rate"] == pytest.approx(1.0)
    assert len(_get(client, world, "manager", history=0)["items"][0]["quality_history"]) == 1


def test_the_vp_sees_every_team_and_a_rep_only_their_own_figures(client: TestClient, world: Tenant) -> None:
    teams = {row["manager_id"]: row for row in _get(client, world, "sales_vp")["items"]}
    assert set(teams) == {world["manager"].user_id, world["director"].user_id}
    assert teams[world["director"].user_id]["quality"]["completeness"] == 0.5  # the manager's team is in it
    # the director's team holds the manager's: the same deals, the same deviation as the quality's team
    assert teams[world["director"].user_id]["forecast"] == teams[world["manager"].user_id]["forecast"]

    mine = _get(client, world, "rep")
    assert (mine["scope"], mine["forecast_hidden"]) == ("own", "own_figures_only")
    (row,) = mine["items"]
    assert (row["user_id"], row["manager_id"], row["forecast"]) == (world["rep"].user_id, None, None)
    assert row["quality"]["completeness"] == 0.6

    it_hidden = Api(client, world["it_director"]).request("GET", "/scorecards/teams")
    assert it_hidden.status_code == 200
    assert it_hidden.json()["forecast_hidden"]  # no forecasts:read: quality alone
    assert all(row["forecast"] is None for row in it_hidden.json()["items"])
    refused = Api(client, world["manager"]).request("GET", "/scorecards/teams", params={"history": 500})
    assert refused.status_code == 422


def test_the_scorecard_page_in_both_languages(client: TestClient, db: Database, world: Tenant) -> None:
    with frozen_at(SCANNED + timedelta(days=2)):
        zh = browser(client, db, world["manager"]).get("/scorecards")
        assert zh.status_code == 200
        assert "团队记分卡" in zh.text
        assert "完整率" in zh.text
        assert "偏差率" in zh.text
        assert "50.0%" in zh.text
        assert "100.0%" in zh.text
        assert "2026-10" in zh.text
        assert world["director"].username not in zh.text
        en = browser(client, db, world["rep"], locale="en").get("/scorecards")
    assert en.status_code == 200
    assert "Team scorecards" in en.text
    assert "60.0%" in en.text
    assert "Your own figures only" in en.text
    assert "Deviation rate" not in en.text
