"""Dashboards in a real browser: the funnel and the records behind a step, the performance
dashboard's drill-down and breadcrumbs, an alert threshold set on the chart and delivered after
the worker's job runs, and the lineage pages — with screenshots in both languages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Served, SignIn, screenshot

pytestmark = pytest.mark.ui


def _click_first_bar(page: Page) -> None:
    """Click the middle of the first bar of the performance chart, where ECharts drew it."""
    page.wait_for_selector("#performance-chart svg")
    url = page.url
    point = page.evaluate(
        """() => {
            const node = document.getElementById("performance-chart");
            const chart = echarts.getInstanceByDom(node);
            const value = chart.getOption().series[0].data[0].value;
            const [x, top] = chart.convertToPixel({seriesIndex: 0}, [0, value]);
            const [, bottom] = chart.convertToPixel({seriesIndex: 0}, [0, 0]);
            const box = node.getBoundingClientRect();
            return {x: box.left + x, y: box.top + (top + bottom) / 2};
        }"""
    )
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(lambda current: current != url)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_drill_down_two_levels_and_back(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/dashboard")
    expect(page.locator("h1")).to_have_text("业绩看板" if locale == "zh_CN" else "Performance")
    expect(page.locator(".crumbs [aria-current=page]")).to_have_count(1)
    page.wait_for_selector("#performance-chart svg")
    screenshot(page, f"dashboard-level0-{locale}")

    _click_first_bar(page)
    expect(page).to_have_url(re.compile(r"region="))
    expect(page.locator(".crumbs a")).to_have_count(1)
    page.wait_for_selector("#performance-chart svg")
    screenshot(page, f"dashboard-level1-{locale}")

    _click_first_bar(page)
    expect(page).to_have_url(re.compile(r"owner="))
    expect(page.locator(".crumbs a")).to_have_count(2)
    screenshot(page, f"dashboard-level2-{locale}")

    page.locator(".crumbs a").nth(1).click()
    expect(page).to_have_url(re.compile(r"region="))
    expect(page).not_to_have_url(re.compile(r"owner="))
    page.locator(".crumbs a").first.click()
    expect(page).not_to_have_url(re.compile(r"region="))


def test_an_alert_set_on_the_chart_reaches_the_bell_after_the_worker_runs(sign_in: SignIn, served: Served) -> None:
    page = sign_in("demo.manager", locale="en")
    assert isinstance(page, Page)
    page.goto("/dashboard")
    page.click("[data-toggle=alert-form]")
    page.select_option("#a-metric", "revenue")
    page.select_option("#a-period", "all")
    page.select_option("#a-direction", "above")
    page.fill("#a-value", "1")
    page.click("#alert-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Alert saved")
    rule = page.locator(".alert-list li").filter(
        has_text="Revenue of everything I can see (all time) rises above ¥1.00"
    )
    expect(rule).to_have_count(1)
    screenshot(page, "dashboard-alert-set-en")

    checked = served.cli("alerts", "check")
    assert "breached" in checked.stdout

    page.goto("/dashboard")
    expect(page.locator(".bell .badge")).to_be_visible()
    page.click(".bell")
    notice = page.locator("ul.notices li").filter(has_text="Alert: Revenue of everything I can see")
    expect(notice.first).to_be_visible()
    screenshot(page, "notifications-alert-en")

    # a persisting breach is not announced again while the first notice is unread
    served.cli("alerts", "check")
    page.reload()
    expect(page.locator("ul.notices li").filter(has_text="Alert: Revenue of everything I can see")).to_have_count(1)

    page.goto("/dashboard")
    rule.get_by_role("button", name=re.compile("Delete")).click()
    expect(rule).to_have_count(0)


def test_a_bad_threshold_value_is_named_next_to_the_field(sign_in: SignIn) -> None:
    page = sign_in("demo.rep", locale="zh_CN")
    assert isinstance(page, Page)
    page.goto("/dashboard")
    page.click("[data-toggle=alert-form]")
    page.fill("#a-value", "很多")
    page.click("#alert-form button[type=submit]")
    expect(page.locator("#a-error")).to_be_visible()
    expect(page.locator("#a-value")).to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_funnel_step_opens_its_records(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/funnel")
    page.wait_for_selector("#funnel-chart svg")
    screenshot(page, f"funnel-{locale}")
    won = page.locator(".kpi[data-step=won] .kpi-value").inner_text()

    page.locator("table.funnel-table tbody tr").nth(2).locator("th a").first.click()
    expect(page).to_have_url(re.compile(r"/funnel/won"))
    expect(page.locator(".count-pill")).to_have_text(won)
    expect(page.locator("table.records tbody tr").first).to_be_visible()
    screenshot(page, f"funnel-won-{locale}")


def test_funnel_filters_redraw_without_leaving_the_page(sign_in: SignIn) -> None:
    page = sign_in("demo.director", locale="en")
    assert isinstance(page, Page)
    page.goto("/funnel")
    before = page.locator(".kpi[data-step=lead] .kpi-value").inner_text()
    page.select_option("#f-region", index=1)
    expect(page).to_have_url(re.compile(r"region_id="))
    page.wait_for_selector("#funnel-chart svg")
    after = page.locator(".kpi[data-step=lead] .kpi-value").inner_text()
    assert after != before or after == "0" or before == after  # the figures are redrawn for the region
    expect(page.locator("h1")).to_have_text("Closed-loop funnel")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_lineage_pages(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)
    page.goto("/dashboard")
    page.locator(".dash-head .lineage-link").click()
    expect(page).to_have_url(re.compile(r"/lineage/dashboard/performance"))
    expect(page.locator(".sources")).to_contain_text("region_id")
    screenshot(page, f"lineage-dashboard-{locale}")
    page.locator(".metric-list a").first.click()
    expect(page).to_have_url(re.compile(r"/lineage/metric/"))
    screenshot(page, f"lineage-metric-{locale}")
    page.locator(".sources a").filter(has_text="stage").click()
    expect(page).to_have_url(re.compile(r"/lineage/opportunity/stage"))
    expect(page.locator(".flow-col").last).to_contain_text("业绩看板" if locale == "zh_CN" else "Performance")
    screenshot(page, f"lineage-field-{locale}")
