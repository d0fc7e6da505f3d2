"""Lead to cash in a real browser (the demo organization): demo.rep opens their overdue instalment
from /cash and records the collection on the contract page; under the demo's collection approval
flow it goes to finance's approval inbox — the CFO follows the link from /cash to the approval,
approves it there, and sees the contract's collected and outstanding amounts move. Screenshot in
Chinese."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

pytestmark = pytest.mark.ui


def _yuan(text: str) -> Decimal:
    return Decimal(text.replace("¥", "").replace(",", "").strip())


def test_record_a_collection_approve_it_in_the_flow_and_see_the_contract_amounts(sign_in: SignIn) -> None:
    rep = sign_in("demo.rep", locale="zh_CN", width=1440)
    assert isinstance(rep, Page)
    rep.goto("/cash")
    overdue = rep.locator("#overdue tbody tr").first
    expect(overdue).to_be_visible()
    overdue.locator("a").click()
    rep.wait_for_url("**/contracts/*")
    contract_url = rep.url
    collected = _yuan(rep.locator('[data-amount="collected"]').inner_text())
    outstanding = _yuan(rep.locator('[data-amount="outstanding"]').inner_text())
    expect(rep.locator('#collection-plan tr[data-status="overdue"]')).to_have_count(1)

    form = rep.locator("#record-collection")
    form.locator('select[name="instalment_id"]').select_option(
        rep.locator('#collection-plan tr[data-status="overdue"]').get_attribute("data-instalment") or ""
    )
    form.locator('input[name="amount"]').fill("10000")
    form.locator('input[name="reference"]').fill("UI-HX-001")
    form.locator("button[type=submit]").click()
    row = rep.locator("#collections tr", has_text="UI-HX-001")
    expect(row).to_have_attribute("data-status", "submitted")
    expect(row.locator("a[data-approval]")).to_have_text("待审批")  # decided in the flow, not here
    assert _yuan(rep.locator('[data-amount="collected"]').inner_text()) == collected  # not counted yet
    collection = row.get_attribute("data-collection")

    page = sign_in("demo.cfo", locale="zh_CN", width=1440)
    assert isinstance(page, Page)
    page.goto("/cash")
    expect(page.locator("#approve-head")).to_have_text("待审批回款")
    waiting = page.locator(f'#to-approve tr[data-collection="{collection}"]')
    expect(waiting.locator("button")).to_have_count(0)
    waiting.locator("a[data-approval]").click()
    page.wait_for_url("**/approvals/*")
    page.fill("#decide input[name=comment]", "已到账")
    page.click("#approve")
    expect(page.locator("#approval-status")).to_have_text("已批准")

    page.goto(contract_url)
    row = page.locator("#collections tr", has_text="UI-HX-001")
    expect(row).to_have_attribute("data-status", "approved")
    assert _yuan(page.locator('[data-amount="collected"]').inner_text()) == collected + 10000
    assert _yuan(page.locator('[data-amount="outstanding"]').inner_text()) == outstanding - 10000
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "cash-contract-zh_CN")
    page.goto("/targets")
    expect(page.locator("table.attainment tbody tr").first).to_be_visible()
    expect(page.locator("#board-people li").first).to_be_visible()
    # the printed rank is the only number before a name (equal figures share it; no list numbering)
    assert page.locator("#board-people").evaluate("list => getComputedStyle(list).listStyleType") == "none"
    screenshot(page, "targets-zh_CN")
