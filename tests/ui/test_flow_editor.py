"""The approval-flow editor in Chinese in a real browser: sales ops create a contract flow, add a
branch with a condition and a second step chosen by role, save and see it stored (screenshot);
and the pool settings' per-tier table spans the form at 1366 px."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot


def test_sales_ops_write_a_branch_with_two_steps_in_the_form(sign_in: SignIn) -> None:
    page = sign_in("demo.sales_vp")
    assert isinstance(page, Page)
    name = f"界面测试合同审批 {secrets.token_hex(2)}"
    page.goto("/approvals/flows")
    page.fill("#new-flow input[name=name]", name)
    page.select_option("#new-flow select[name=record_type]", "contract")
    page.click("#new-flow button[type=submit]")
    expect(page.locator("h1")).to_have_text(name)

    page.get_by_role("button", name="添加分支").click()
    branch = page.locator("fieldset.branch").last
    branch.get_by_label("分支名称").fill("特大合同")
    branch.get_by_label("优先级").fill("1")
    branch.get_by_role("button", name="添加条件").click()
    condition = branch.locator(".condition").last
    condition.locator("select[name$='.field']").select_option("amount")
    condition.locator("select[name$='.op']").select_option("gt")
    condition.locator("input[name$='.value']").fill("300000")
    branch.locator(".step").first.get_by_label("步骤名称").fill("直属主管")
    branch.get_by_role("button", name="添加步骤").click()
    second = branch.locator(".step").last
    second.get_by_label("步骤名称").fill("财务复核")
    second.locator("select[data-kind-select]").select_option("role")
    expect(second.locator("select[name$='.role']")).to_be_visible()  # only the inputs the kind needs
    expect(second.locator("input[name$='.levels']")).to_be_hidden()
    second.locator("select[name$='.role']").select_option("cfo")
    screenshot(page, "approval-flow-editor-zh_CN")
    page.click("#save-flow")

    expect(page.locator("#flow-saved")).to_be_visible()
    saved = page.locator("fieldset.branch").first  # the conditional branch now comes first
    expect(saved.get_by_label("分支名称")).to_have_value("特大合同")
    expect(saved.locator(".step")).to_have_count(2)
    expect(saved.locator(".step").last.locator("select[name$='.role']")).to_have_value("cfo")
    page.locator("#flow-json summary").click()
    expect(page.locator("#flow-json pre")).to_contain_text('"value": 300000')
    expect(page.get_by_text("第2个分支")).to_have_count(0)  # no problem shown
    screenshot(page, "approval-flow-saved-zh_CN")


def test_the_pool_settings_tier_table_spans_the_form(sign_in: SignIn) -> None:
    page = sign_in("demo.sales_vp", width=1366, height=768)
    assert isinstance(page, Page)
    page.goto("/pools/settings")
    table = page.locator("form table").first
    form = page.locator("form.record-fields").first
    table_box, form_box = table.bounding_box(), form.bounding_box()
    assert table_box is not None
    assert form_box is not None
    assert table_box["width"] > form_box["width"] * 0.5
    screenshot(page, "pool-settings-1366")
