"""The automation decisions panel on an account's 360° page, in a real browser: why the rule fired
and Undo while its action waits."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, expect

from tests.ui.conftest import Served, SignIn, screenshot


def _api(page: Page, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")
    response = page.request.fetch(f"/api/v1{path}", method=method, data=body, headers=headers)
    assert response.ok, response.text()
    return response.json() if response.status != 204 else None


def test_a_manager_sees_why_a_rule_fired_on_an_account_and_undoes_its_task(served: Served, sign_in: SignIn) -> None:
    page = sign_in("demo.manager")
    assert isinstance(page, Page)
    definition = {
        "trigger": {"kind": "event", "event": "account.updated"},
        "conditions": [],
        "actions": [{"type": "create_task", "target": "owner", "params": {"title": "回访客户"}}],
    }
    _api(page, "POST", "/rules", {"name": "客户资料变更回访", "definition": definition, "enabled": True,
                                   "undo_seconds": 3600})  # fmt: skip
    account = _api(page, "GET", "/accounts?limit=1")["items"][0]
    _api(page, "PATCH", f"/accounts/{account['id']}", {"phone": "021-6000 0000"})
    served.cli("rules", "run-once")
    page.goto(f"/accounts/{account['id']}#decisions")
    panel = page.locator("#decisions")
    expect(panel).to_contain_text("规则「客户资料变更回访」")
    expect(panel.get_by_role("button", name="撤销")).to_be_visible()
    panel.scroll_into_view_if_needed()
    screenshot(page, "account-decisions-zh_CN")
    panel.get_by_role("button", name="撤销").click()
    expect(page.locator("#decisions").get_by_role("button", name="撤销")).to_have_count(0)
