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


@pytest.mark.parametrize(("dimension", "locale"), [("region", "zh_CN"), ("owner", "zh_CN"), ("owner", "en")])
def test_the_figures_fit_a_1366_screen_in_one_unit(
    served: Served, sign_in: SignIn, dimension: str, locale: str
) -> None:
    """At 1366 × 768 every table of the page lies inside the viewport (no sideways scrolling), and
    the figures table shows every amount in one unit (万元 / ¥ millions), named once in its header."""
    served.cli("forecast", "snapshot", "--simulations", "300")
    page = sign_in("demo.sales_vp", locale=locale, width=1366, height=768)
    assert isinstance(page, Page)
    page.goto(f"/forecasts?dimension={dimension}")
    page.wait_for_selector("#forecast-chart svg")
    expect(page.locator("#forecast-unit")).to_have_text(
        "金额单位：万元" if locale == "zh_CN" else "Amounts in ¥ millions"
    )
    amounts = page.locator("#forecast-table tbody td.num").all_inner_texts()
    assert amounts
    # no currency symbol and no 万 suffix inside a cell: the unit is the header's
    assert not any("¥" in text or "万" in text for text in amounts)
    viewport = page.viewport_size
    assert viewport is not None
    for table in page.locator("main table").all():
        box = table.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= viewport["width"], table.get_attribute("id")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    screenshot(page, f"forecasts-1366-{dimension}-{locale}")
