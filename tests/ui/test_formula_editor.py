"""The formula editor in a real browser: type part of a field name, pick the suggestion with the
keyboard, see the preview follow, then type a bad formula and see the error at its position."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

pytestmark = pytest.mark.ui


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_autocomplete_preview_and_error_position(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/settings/formulas?record_type=account")
    editor = page.locator("#expression")
    expect(page.locator(".fe-status.empty")).to_be_visible()

    editor.click()
    editor.press_sequentially("ROUND(annual_rev", delay=15)
    suggestions = page.locator("#fe-suggestions")
    expect(suggestions).to_be_visible()
    expect(suggestions.locator("[role=option][aria-selected=true] .fe-name")).to_have_text("annual_revenue")
    expect(page.locator("#fe-hint")).to_contain_text("ROUND(number, digits)")
    screenshot(page, f"formula-editor-suggest-{locale}")
    editor.press("Tab")
    expect(suggestions).to_be_hidden()
    editor.press_sequentially(" / 10000, 1)", delay=15)
    assert editor.input_value() == "ROUND(annual_revenue / 10000, 1)"
    expect(page.locator(".fe-status.ok [data-result-type=number]")).to_be_visible()
    expect(page.locator(".fe-values tbody tr").first).to_be_visible()

    # a related list's fields after the dot, chosen with the arrows and Enter; Esc closes the list
    editor.press_sequentially(" + SUM(orders.st", delay=15)
    expect(suggestions.locator("[role=option]").first).to_contain_text("status")
    editor.press("Escape")
    expect(suggestions).to_be_hidden()

    editor.fill("")
    editor.press_sequentially("ROUND(annual_revenue / 10000, 1) + revnue", delay=5)
    error = page.locator(".fe-status.error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-start", "35")
    expect(error).to_have_attribute("data-column", "36")
    expect(page.locator(".fe-backdrop mark.fe-bad")).to_have_text("revnue")
    expect(error.locator(".fe-message")).to_contain_text("未知字段" if locale == "zh_CN" else "unknown field")
    screenshot(page, f"formula-editor-error-{locale}")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_seed_example_loads_and_previews_on_dealers(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/settings/formulas")

    page.locator(".fe-examples summary").click()
    page.locator("[data-example=inventory_turnover]").click()

    expect(page.locator("#expression")).to_have_value(
        'ROUND((SUM(orders.amount WHERE status != "cancelled") - SUM(child_orders.amount WHERE status != "cancelled"))'
        ' / (SUM(child_orders.amount WHERE days_ago <= 90 AND status != "cancelled") / 90), 1)'
    )
    expect(page.locator("#fe-sample")).to_have_value("dealers")
    expect(page.locator(".fe-status.ok")).to_be_visible()
    screenshot(page, f"formula-editor-example-{locale}")
