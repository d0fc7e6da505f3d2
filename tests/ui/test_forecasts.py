"""The forecast page in a real browser: the nightly snapshot taken by the CLI on the demo, then the
chart with its band, the figures, the attribution and the data sources — screenshots in both
languages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Served, SignIn, screenshot

pytestmark = pytest.mark.ui


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_forecast_page_reads_the_snapshot(served: Served, sign_in: SignIn, locale: str) -> None:
    served.cli("forecast", "snapshot", "--simulations", "300")
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/forecasts?dimension=region")
    expect(page.locator("h1")).to_have_text("签约额预测" if locale == "zh_CN" else "Bookings forecast")
    page.wait_for_selector("#forecast-chart svg")
    expect(page.locator("#forecast-table tbody tr").first).to_be_visible()
    # eight drivers (stock-outs, price changes and calendar events among them), pending, unexplained
    expect(page.locator("#attribution-table tbody tr")).to_have_count(10)
    expect(page.locator("#forecast-basis")).to_be_visible()
    expect(page.locator("#data-sources")).to_be_visible()
    screenshot(page, f"forecasts-{locale}")
