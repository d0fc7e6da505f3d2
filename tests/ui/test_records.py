"""Record pages and the import page in a real browser: create an account (a validation error
first), edit it, log a call; import a file with a bad row, see it reported, commit it and watch the
progress bar finish. Screenshots of a list, a form with an error and an import report."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import CLOSELOOP, Served, SignIn, screenshot

pytestmark = pytest.mark.ui


@pytest.fixture
def worker(served: Served) -> Iterator[subprocess.Popen[bytes]]:
    """A background worker on the served database's queue, for the length of one test."""
    process = subprocess.Popen([CLOSELOOP, "worker", "--workers", "1"], env=served.environment)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_create_an_account_edit_it_and_log_a_call(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    name = f"界面测试医院 {uuid.uuid4().hex[:6]}"
    page.goto("/accounts")
    expect(page.locator("table.records tbody tr").first).to_be_visible()
    screenshot(page, f"accounts-list-{locale}")

    page.goto("/accounts/new")
    page.fill("#f-name", name)
    page.fill("#f-employees", "many")
    page.click("form.record-fields button[type=submit]")
    employees = page.locator("#f-employees")
    expect(employees).to_have_attribute("aria-invalid", "true")
    message = "请输入整数。" if locale == "zh_CN" else "Enter a whole number."
    expect(page.locator("#f-employees-error")).to_have_text(message)
    expect(page.locator("#f-name")).to_have_value(name)
    screenshot(page, f"account-form-error-{locale}")

    employees.fill("800")
    page.select_option("#f-tier", "A")
    page.click("form.record-fields button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/\d+$"))
    account_id = page.url.rsplit("/", 1)[1]

    page.goto(f"/accounts/{account_id}/edit")
    expect(page.locator("#f-employees")).to_have_value("800")
    page.fill("#f-city", "杭州")
    page.keyboard.press("Enter")  # a keyboard submit
    page.wait_for_url(re.compile(rf"/accounts/{account_id}$"))

    page.goto(f"/activities/new?account_id={account_id}&type=call")
    expect(page.locator("#f-kind")).to_have_value("call")
    expect(page.locator("#f-account-id")).to_have_value(account_id)
    page.fill("#f-subject", "电话回访")
    page.click("form.record-fields button[type=submit]")
    page.wait_for_url(re.compile(r"/activities\?saved=\d+$"))
    expect(page.locator("tr.just-saved")).to_contain_text("电话回访")

    page.goto("/accounts?q=" + name.split()[-1])
    expect(page.locator("table.records tbody")).to_contain_text("杭州")

    page.goto("/opportunities")
    page.locator("table.records tbody th a").first.click()
    expect(page.locator("h2").first).to_have_text("阶段历史" if locale == "zh_CN" else "Stage history")
    screenshot(page, f"opportunity-{locale}")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_import_a_file_with_a_bad_row(sign_in: SignIn, worker: object, tmp_path: Path, locale: str) -> None:
    page = sign_in("demo.manager", locale=locale)
    assert isinstance(page, Page)
    tag = uuid.uuid4().hex[:6]
    rows = [f"导入医院{tag}-{n},hospital,{100 + n}" for n in range(40)]
    rows.insert(2, f"导入医院{tag}-坏,hospital,很多")
    source = tmp_path / f"客户-{tag}.csv"
    source.write_bytes(("客户名称,行业,员工数\n" + "\n".join(rows) + "\n").encode("gbk"))

    page.goto("/import")
    page.select_option("#entity", "accounts")
    page.set_input_files("#file", str(source))
    page.click(".upload-form button[type=submit]")
    expect(page.locator("#map-0")).to_have_value("name")
    screenshot(page, f"import-mapping-{locale}")
    page.click("button[value=dry_run]")

    problems = page.locator("table.problems-table tbody tr")
    expect(problems).to_have_count(1, timeout=30_000)
    expect(problems.first.locator("th")).to_have_text("4")
    expect(problems.first).to_contain_text("很多")
    screenshot(page, f"import-report-{locale}")

    page.click("form[action$='/commit'] button")
    expect(page.locator("[data-status=done]")).to_be_visible(timeout=30_000)
    expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    expect(page.locator("dl.counts")).to_contain_text("40")
    screenshot(page, f"import-done-{locale}")


@pytest.mark.parametrize("path", ["/opportunities", "/accounts/new", "/activities"])
def test_record_pages_fit_a_tablet(sign_in: SignIn, path: str) -> None:
    page = sign_in("demo.rep", locale="zh_CN", width=820, height=1180)
    assert isinstance(page, Page)
    page.goto(path)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_pick_an_account_the_form_did_not_load(sign_in: SignIn) -> None:
    """The account list of a deal's form holds the most recently changed accounts only; typing a
    name in its box brings in the others (the least recently changed account is not loaded)."""
    page = sign_in("demo.sales_vp", locale="zh_CN")
    assert isinstance(page, Page)
    page.goto("/accounts?sort=updated_at")
    first = page.locator("table.records tbody tr th a").first
    name = first.inner_text().strip()
    account_id = (first.get_attribute("href") or "").rsplit("/", 1)[1]

    page.goto("/opportunities/new")
    expect(page.locator(f'#f-account-id option[value="{account_id}"]')).to_have_count(0)
    box = page.locator("input.select-filter[aria-controls=f-account-id]")
    box.fill(name[:6])
    expect(page.locator(f'#f-account-id option[value="{account_id}"]')).to_have_count(1)
    box.press("Enter")
    expect(page.locator("#f-account-id")).to_have_value(account_id)
    screenshot(page, "opportunity-form-account-lookup")
