"""The lead-to-cash and targets pages in Chinese: the contract page's plan, a collection recorded
by the rep and approved by their manager on /cash, the amounts that follow, a refused plan with
its message, /targets with attainment and leaderboards, and the home panel; and in English."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient

from closeloop.cash import service as cash
from closeloop.db.session import Database
from closeloop.targets import service as targets
from closeloop.targets.models import Metric, TargetScope
from tests.cash.conftest import World
from tests.factories import Tenant
from tests.web.test_settings_pages import browser, csrf_of


def _amount(page: str, name: str) -> str:
    match = re.search(rf'data-amount="{name}">([^<]+)<', page)
    assert match, name
    return match.group(1).strip()


def test_record_approve_and_see_the_contract_amounts(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    contract = world.contract("100000.00")
    instalment = world.instalment(contract, "60000.00", date(2026, 3, 20))
    rep = browser(client, db, tenant["rep"])
    page = rep.get(f"/contracts/{contract}")
    assert page.status_code == 200, page.text
    assert "回款计划" in page.text
    assert "待回款" in page.text
    token = csrf_of(page.text)
    refused = rep.post(
        f"/contracts/{contract}/instalments", data={"csrf": token, "amount": "50000", "due_on": "2026-05-01"}
    )
    assert refused.status_code == 422
    assert "超出合同金额" in refused.text  # the amount still free shows in the plan's figures
    recorded = rep.post(
        f"/contracts/{contract}/collections",
        data={
            "csrf": token,
            "instalment_id": str(instalment),
            "amount": "20000",
            "received_on": "2026-03-01",
            "method": "bank_transfer",
            "reference": "HX20260301",
        },
        follow_redirects=False,
    )
    assert recorded.status_code == 303, recorded.text
    page = rep.get(f"/contracts/{contract}").text
    assert "待审批" in page
    assert "批准" not in page
    assert _amount(page, "collected") == "¥0.00"

    manager = browser(client, db, tenant["manager"])
    waiting = manager.get("/cash")
    assert "待审批回款" in waiting.text
    assert "HX20260301" in waiting.text
    collection = re.search(r'data-collection="(\d+)"', waiting.text)
    assert collection
    approved = manager.post(
        f"/cash/collections/{collection.group(1)}/approve", data={"csrf": csrf_of(waiting.text)}, follow_redirects=False
    )
    assert approved.status_code == 303
    page = manager.get(f"/contracts/{contract}").text
    assert (_amount(page, "signed"), _amount(page, "collected"), _amount(page, "outstanding")) == (
        "¥100,000.00",
        "¥20,000.00",
        "¥80,000.00",
    )
    assert "部分回款" in page


def test_targets_page_home_panel_and_english(client: TestClient, db: Database, tenant: Tenant, world: World) -> None:
    contract = world.contract("100000.00", signed_on=date(2026, 3, 1))
    assert contract
    vp = world.actor("sales_vp")
    with db.unit_of_work(vp) as session:
        targets.set_target(
            session,
            vp,
            scope=TargetScope.USER,
            user_id=tenant["rep"].user_id,
            metric=Metric.CONTRACT_AMOUNT,
            year=2026,
            month=3,
            value=Decimal("400000"),
        )
    rep = browser(client, db, tenant["rep"])
    home = rep.get("/").text
    assert "本月目标" in home
    assert "25.0%" in home
    page = rep.get("/targets?year=2026&month=3").text
    assert "排行榜" in page
    assert "25.0%" in page
    assert "设定目标" not in page
    vp_page = browser(client, db, tenant["sales_vp"], locale="en").get("/targets?year=2026&month=3").text
    assert "Leaderboard" in vp_page
    assert "Set a target" in vp_page
    assert "¥100,000.00" in vp_page


def test_a_refused_invoice_is_explained_in_chinese(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    contract = world.contract("100000.00")
    rep = browser(client, db, tenant["rep"])
    token = csrf_of(rep.get(f"/contracts/{contract}").text)
    refused = rep.post(
        f"/contracts/{contract}/invoices",
        data={"csrf": token, "amount": "1000", "title_name": "瑞金医院", "tax_id": "123", "kind": "general"},
    )
    assert refused.status_code == 422
    assert "税号" in refused.text
    assert "unified social credit code" not in refused.text
    over = rep.post(
        f"/contracts/{contract}/invoices",
        data={"csrf": token, "amount": "200000", "title_name": "瑞金医院", "tax_id": "91350100M000100Y43"},
    )
    assert over.status_code == 422
    assert "金额" in over.text


def test_a_collection_in_an_approval_flow_links_to_its_approval_instead_of_offering_a_decision(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    from tests.cash.test_collection_approval import _collection_flow

    contract = world.contract("100000.00")
    instalment = world.instalment(contract, "60000.00", date(2026, 3, 20))
    direct = world.collect(instalment, "1000.00", approve=False)  # recorded before the flow: decided here
    _collection_flow(world)
    flowing = world.collect(instalment, "2000.00", approve=False)
    cfo = world.actor("cfo")
    with db.reading(cfo) as session:
        approval = cash.pending_approval(session, cfo.organization_id, flowing)
        assert cash.pending_approvals(session, cfo.organization_id, [direct, flowing]) == {flowing: approval}
    finance = browser(client, db, tenant["cfo"])
    for page in (finance.get("/cash").text, finance.get(f"/contracts/{contract}").text):
        flowing_row = re.search(rf'<tr data-collection="{flowing}".*?</tr>', page, re.S)
        direct_row = re.search(rf'<tr data-collection="{direct}".*?</tr>', page, re.S)
        assert flowing_row
        assert direct_row
        assert f'href="/approvals/{approval}"' in flowing_row.group(0)
        assert "待审批" in flowing_row.group(0)
        assert "/approve" not in flowing_row.group(0)
        assert f"/cash/collections/{direct}/approve" in direct_row.group(0)


def test_the_cash_page_calls_a_collection_awaiting_approval_by_one_name(
    client: TestClient, db: Database, world: World
) -> None:
    from tests.web.pages import browse_as
    from tests.web.test_sign_in import ENGLISH

    contract = world.contract("100000.00")
    instalment = world.instalment(contract, "30000.00", date(2026, 3, 10))
    world.collect(instalment, "10000.00", approve=False)
    browse_as(client, db, world.tenant["rep"])

    pages = [client.get(path, headers=ENGLISH).text for path in ("/cash", f"/contracts/{contract}")]

    assert all("Approval pending" not in page for page in pages)
    assert any("Awaiting approval" in page for page in pages)
