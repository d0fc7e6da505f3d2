"""Contract comparison in a real browser: the sales VP uploads the standard template and compares a
modified copy; the diff and risk levels are shown (screenshots in both languages)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

FIXTURES = Path(__file__).parent.parent / "assistant" / "contracts"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_sales_vp_compares_a_contract_with_the_template(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/assistant/contracts")
    name = f"标准采购合同 {secrets.token_hex(3)}"
    page.locator("input[name=name]").fill(name)
    page.locator("form[action='/assistant/contracts/templates'] input[type=file]").set_input_files(
        str(FIXTURES / "template_zh.txt")
    )
    page.locator("form[action='/assistant/contracts/templates'] button[type=submit]").click()
    page.locator("select[name=template_id]").select_option(label=name)
    page.locator("form[action='/assistant/contracts/compare'] input[type=file]").set_input_files(
        str(FIXTURES / "modified_zh.txt")
    )
    page.locator("form[action='/assistant/contracts/compare'] button[type=submit]").click()
    expect(page.locator(".comparison")).to_have_attribute("data-risk", "3")
    expect(page.locator(".clause[data-status=missing]")).to_have_count(2)
    expect(page.locator(".clause[data-status=changed] ins").first).to_be_visible()
    screenshot(page, f"contract-comparison-{locale}")
