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


@pytest.fixture(scope="module")
def scanned(served: Served) -> None:
    """One scan of the demo (a full scan takes a while; the module's other tests share it)."""
    served.cli("quality", "scan")


def test_a_manager_scans_now_and_sees_the_counts(sign_in: SignIn, worker: subprocess.Popen[bytes]) -> None:
    page = sign_in("demo.manager", locale="zh_CN", width=1440)
    assert isinstance(page, Page)
    page.goto("/quality")
    expect(page.locator("h1")).to_have_text("数据质量")

    page.click("button.scan-now")
    progress = page.locator("#scan-progress")
    expect(progress).to_have_attribute("data-status", re.compile("queued|running|done"))
    # the page polls the scan every second until the worker has finished it
    expect(progress).to_have_attribute("data-status", "done", timeout=240_000)
    expect(progress).to_contain_text("扫描完成")
    progress.locator("a.button").click()
    _the_counts_are_shown(page)
    screenshot(page, "quality-zh_CN")


def test_the_quality_page_in_english_after_a_scan(sign_in: SignIn, scanned: None) -> None:
    page = sign_in("demo.manager", locale="en", width=1440)
    assert isinstance(page, Page)
    page.goto("/quality")
    expect(page.locator("h1")).to_have_text("Data quality")
    expect(page.locator("button.scan-now")).to_have_text(re.compile("Scan now", re.IGNORECASE))
    _the_counts_are_shown(page)
    screenshot(page, "quality-en")


def _the_counts_are_shown(page: Page) -> None:
    total = page.locator(".tile-value[data-total]")
    expect(total).to_be_visible()
    assert int(total.get_attribute("data-total") or "0") > 0
    assert page.locator("table.kinds tbody tr").count() >= 12
    expect(page.locator("table.defects tbody tr").first).to_be_visible()
    expect(page.locator("table.kpis tbody tr").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_rep_marks_a_task_done(sign_in: SignIn, scanned: None, locale: str) -> None:
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
