"""Lead to cash started from the web, in Chinese (the demo organization): demo.rep opens one of
their won opportunities, clicks 新建合同, saves the contract prefilled from the deal, and adds a
collection plan instalment on the contract page. Screenshots of the form, the contract and the list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

pytestmark = pytest.mark.ui


def test_a_rep_goes_from_a_won_opportunity_to_a_contract_with_a_plan(sign_in: SignIn) -> None:
    page = sign_in("demo.rep", locale="zh_CN", width=1280)
    assert isinstance(page, Page)
    page.goto("/opportunities?stage=won")
    page.locator("table a[href^='/opportunities/']").first.click()
    page.wait_for_url("**/opportunities/*")
    deal = page.locator("h1").first.inner_text().strip()

    page.locator("#new-contract").click()
    page.wait_for_url("**/contracts/new?opportunity_id=*")
    expect(page.locator("h1")).to_contain_text("新建合同")
    expect(page.locator("#f-title")).to_have_value(deal)  # prefilled from the deal
    expect(page.locator("#f-account-id")).not_to_have_value("")
    page.locator("#f-title").fill(f"{deal} 销售合同")
    screenshot(page, "contract-new-zh_CN")
    page.locator("form button[type=submit]", has_text="保存").click()
    page.wait_for_url(re.compile(r"/contracts/\d+$"))
    expect(page.locator("h1")).to_have_text(f"{deal} 销售合同")
    expect(page.locator("#contract-status")).to_have_text("草稿")

    form = page.locator("#add-instalment")
    form.locator("input[name=amount]").fill("10000")
    form.locator("input[name=due_on]").fill("2027-01-15")
    form.locator("button[type=submit]").click()
    expect(page.locator('#collection-plan tr[data-status="pending"]')).to_have_count(1)
    expect(page.locator("#collection-plan")).to_contain_text("¥10,000.00")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "contract-plan-zh_CN")

    page.goto("/contracts")
    expect(page.locator("table")).to_contain_text(f"{deal} 销售合同")
    # the sidebar's link (the phone menu repeats it)
    expect(page.locator("nav a[href='/contracts']").first).to_have_text("合同")
    screenshot(page, "contracts-list-zh_CN")
