"""An approval decided from the inbox in a real browser: sales ops write a flow, a rep submits a
contract, the rep's manager opens the inbox, reads the snapshot and approves (screenshots)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot


def _api(page: Page, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")
    response = page.request.fetch(f"/api/v1{path}", method=method, data=body, headers=headers)
    assert response.ok, response.text()
    return response.json()


def test_a_manager_approves_from_the_inbox(sign_in: SignIn) -> None:
    ops = sign_in("demo.sales_vp")
    assert isinstance(ops, Page)
    title = f"审批测试合同 {secrets.token_hex(3)}"
    flows = _api(ops, "GET", "/approval-flows?record_type=contract")["items"]
    if not flows:
        _api(ops, "POST", "/approval-flows", {"name": "合同审批", "record_type": "contract", "definition": {
            "branches": [{"name": "默认", "conditions": [], "steps": [
                {"name": "直属主管", "mode": "any", "approvers": [{"kind": "supervisor"}]}]}]}})  # fmt: skip
    rep = sign_in("demo.rep")
    assert isinstance(rep, Page)
    account = _api(rep, "GET", "/accounts?limit=1")["items"][0]
    contract = _api(rep, "POST", "/contracts", {"title": title, "account_id": account["id"], "amount": "120000.00"})
    submitted = _api(rep, "POST", "/approvals", {"record_type": "contract", "record_id": contract["id"]})

    manager = sign_in("demo.manager")
    assert isinstance(manager, Page)
    manager.goto("/approvals")
    row = manager.locator(f'#approvals tr[data-approval="{submitted["id"]}"]')
    expect(row).to_be_visible()
    screenshot(manager, "approvals-inbox-zh_CN")
    row.get_by_role("link").click()
    expect(manager.locator("#snapshot")).to_contain_text(title)
    expect(manager.locator("#snapshot")).to_contain_text("¥120,000.00")  # money formatted, not the stored figure
    manager.fill("#decide input[name=comment]", "同意,按合同执行")
    manager.click("#approve")
    expect(manager.locator("#approval-status")).to_have_text("已批准")
    expect(manager.locator("#timeline")).to_contain_text("同意,按合同执行")
    screenshot(manager, "approval-approved-zh_CN")
