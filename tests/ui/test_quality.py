"""The data-quality pages in a real browser: start a scan and watch it finish through the real
worker, see the counts; mark a task done; the asset map. Screenshots in Chinese and English."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import CLOSELOOP, Served, SignIn, screenshot

pytestmark = pytest.mark.ui


@pytest.fixture
def worker(served: Served) -> Iterator[subprocess.Popen[bytes]]:
    """``closeloop worker`` on the served queue, for as long as the test needs it."""
    process = subprocess.Popen(
        [CLOSELOOP, "worker", "--workers", "1"],
        env=served.environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_manager_scans_now_and_sees_the_counts(sign_in: SignIn, worker: subprocess.Popen[bytes], locale: str) -> None:
    page = sign_in("demo.manager", locale=locale, width=1440)
    assert isinstance(page, Page)
    page.goto("/quality")
    expect(page.locator("h1")).to_have_text("数据质量" if locale == "zh_CN" else "Data quality")

    page.click("button.scan-now")
    progress = page.locator("#scan-progress")
    expect(progress).to_have_attribute("data-status", re.compile("queued|running|done"))
    # the page polls the scan every second until the worker has finished it
    expect(progress).to_have_attribute("data-status", "done", timeout=240_000)
    expect(progress).to_contain_text("扫描完成" if locale == "zh_CN" else "Scan finished")
    progress.locator("a.button").click()

    total = page.locator(".tile-value[data-total]")
    expect(total).to_be_visible()
    assert int(total.get_attribute("data-total") or "0") > 0
    assert page.locator("table.kinds tbody tr").count() >= 12
    expect(page.locator("table.defects tbody tr").first).to_be_visible()
    expect(page.locator("table.kpis tbody tr").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, f"quality-{locale}")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_rep_marks_a_task_done(sign_in: SignIn, served: Served, locale: str) -> None:
    served.cli("quality", "scan")  # the rep's data-quality tasks exist, whichever test ran first
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    page.goto("/tasks")
    expect(page.locator("h1")).to_have_text("我的待办" if locale == "zh_CN" else "My tasks")
    done_count = page.locator("[data-count=done]")
    before = int((done_count.text_content() or "0").replace(",", ""))
    first = page.locator("ul.tasks li.open").first
    title = first.locator(".title").text_content() or ""
    screenshot(page, f"tasks-{locale}")

    first.locator("button.tick").click()

    expect(done_count).to_have_text(f"{before + 1:,}")
    page.goto("/tasks?status=done")
    expect(page.locator("ul.tasks li.done .title", has_text=title).first).to_be_visible()
    screenshot(page, f"tasks-done-{locale}")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_an_admin_edits_the_asset_map(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.admin", locale=locale)
    assert isinstance(page, Page)
    page.goto("/settings/assets")
    expect(page.locator("h1")).to_have_text("数据资产地图" if locale == "zh_CN" else "Data asset map")
    page.locator("#asset-record_type-lead a.button").click()
    form = page.locator("form.asset-form")
    expect(form).to_be_visible()
    form.locator("select[name=accountable_user_id]").select_option(index=2)
    chosen = form.locator("select[name=accountable_user_id] option:checked").text_content() or ""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, f"assets-edit-{locale}")
    form.locator("button[type=submit]").click()

    expect(page.locator("#asset-record_type-lead")).to_contain_text(chosen.strip())
    expect(page.locator("a[href*='data-assets/export?format=xlsx']")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, f"assets-{locale}")
