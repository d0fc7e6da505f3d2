"""Lead to cash in a real browser (the demo organization): finance opens an overdue instalment from
/cash, records the collection on the contract page, approves it, and sees the contract's collected
and outstanding amounts move. Screenshot in Chinese."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

pytestmark = pytest.mark.ui


def _yuan(text: str) -> Decimal:
    return Decimal(text.replace("¥", "").replace(",", "").strip())


def test_record_a_collection_approve_it_and_see_the_contract_amounts(sign_in: SignIn) -> None:
    page = sign_in("demo.cfo", locale="zh_CN", width=1440)
    assert isinstance(page, Page)
    page.goto("/cash")
    expect(page.locator("#approve-head")).to_have_text("待审批回款")
    overdue = page.locator("#overdue tbody tr").first
    expect(overdue).to_be_visible()
    overdue.locator("a").click()
    page.wait_for_url("**/contracts/*")
    collected = _yuan(page.locator('[data-amount="collected"]').inner_text())
    outstanding = _yuan(page.locator('[data-amount="outstanding"]').inner_text())
    expect(page.locator('#collection-plan tr[data-status="overdue"]')).to_have_count(1)

    form = page.locator("#record-collection")
    form.locator('select[name="instalment_id"]').select_option(
        page.locator('#collection-plan tr[data-status="overdue"]').get_attribute("data-instalment") or ""
    )
    form.locator('input[name="amount"]').fill("10000")
    form.locator('input[name="reference"]').fill("UI-HX-001")
    form.locator("button[type=submit]").click()
    row = page.locator("#collections tr", has_text="UI-HX-001")
    expect(row).to_have_attribute("data-status", "submitted")
    assert _yuan(page.locator('[data-amount="collected"]').inner_text()) == collected  # not counted yet

    row.locator("button", has_text="批准").click()
    row = page.locator("#collections tr", has_text="UI-HX-001")
    expect(row).to_have_attribute("data-status", "approved")
    assert _yuan(page.locator('[data-amount="collected"]').inner_text()) == collected + 10000
    assert _yuan(page.locator('[data-amount="outstanding"]').inner_text()) == outstanding - 10000
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "cash-contract-zh_CN")
    page.goto("/targets")
    expect(page.locator("table.attainment tbody tr").first).to_be_visible()
    expect(page.locator("#board-people li").first).to_be_visible()
    screenshot(page, "targets-zh_CN")
