"""The approval pages in Chinese: the inbox boxes, the detail with its snapshot, steps and timeline,
approving and rejecting from the page, the flow list and the flow editor."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.approvals.test_approvals_api import AMOUNT_FLOW, contract, flow, submit
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of


def test_inbox_detail_decide_and_flow_editor(client: TestClient, db: Database, tenant: Tenant) -> None:
    ops, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    created = flow(ops, "contract", AMOUNT_FLOW)
    submitted = submit(rep, "contract", contract(rep, "250000.00")["id"])
    manager = browser(client, db, tenant["manager"])

    inbox = manager.get("/approvals")
    assert inbox.status_code == 200, inbox.text
    assert "待我审批" in inbox.text
    assert f'data-approval="{submitted["id"]}"' in inbox.text
    page = manager.get(f"/approvals/{submitted['id']}")
    assert "提交时的内容" in page.text
    assert "¥250,000.00" in page.text  # money formatted, not the stored figure
    assert "依次审批" in page.text
    token = csrf_of(page.text)
    refused = manager.post(f"/approvals/{submitted['id']}/reject", data={"csrf": token, "reason": " "})
    assert refused.status_code == 422
    assert "reason" in refused.text
    approved = manager.post(f"/approvals/{submitted['id']}/approve", data={"csrf": token, "comment": "同意"})
    assert approved.status_code == 200, approved.text  # followed to the detail page
    assert "审批记录" in approved.text
    assert "同意" in approved.text
    assert f'data-approval="{submitted["id"]}"' not in manager.get("/approvals").text

    vp = browser(client, db, tenant["sales_vp"])
    flows_page = vp.get("/approvals/flows")
    assert "审批流程" in flows_page.text
    assert "合同" in flows_page.text
    editor = vp.get(f"/approvals/flows/{created['id']}")
    assert 'value="大额"' in editor.text  # the branches as rows of the form (tests/approvals/test_flow_editor.py)
    assert "高级：流程的 JSON（只读）" in editor.text


def test_an_expense_claim_from_the_inbox(client: TestClient, db: Database, tenant: Tenant) -> None:
    ops = Api(client, tenant["sales_vp"])
    flow(ops, "expense", [{"name": "默认", "conditions": [], "steps": [
        {"name": "主管", "mode": "any", "approvers": [{"kind": "supervisor"}]}]}])  # fmt: skip
    rep = browser(client, db, tenant["rep"])
    token = csrf_of(rep.get("/approvals").text)

    refused = rep.post("/approvals/expense", data={"csrf": token, "amount": "abc"})
    assert refused.status_code == 422
    assert "金额:" in refused.text  # the field's label, not the internal path
    assert "details.amount" not in refused.text
    claimed = rep.post(
        "/approvals/expense", data={"csrf": token, "amount": "320.5", "category": "差旅", "spent_on": "2026-11-20"}
    )
    assert claimed.status_code == 200, claimed.text
    assert "320.50" in claimed.text
    assert "费用日期" in claimed.text
    assert "费用报销 · 差旅 ¥320.50" in claimed.text
    no_kind = rep.post("/approvals/expense", data={"csrf": token, "amount": "10", "spent_on": "2026-11-20"})
    assert no_kind.status_code == 422
    assert "details.category" not in no_kind.text
    assert "类别:" in no_kind.text
    assert 'name="spent_on" type="date" required max="' in rep.get("/approvals").text

    english = browser(client, db, tenant["manager"], locale="en").get("/approvals")
    assert "Expense · 差旅 ¥320.50" in english.text
    assert "费用报销" not in english.text


def test_the_inbox_in_english(client: TestClient, db: Database, tenant: Tenant) -> None:
    page = browser(client, db, tenant["rep"], locale="en").get("/approvals?box=submitted")
    assert page.status_code == 200
    assert "Submitted by me" in page.text
    assert "New expense claim" in page.text


def test_a_resubmitted_approval_shows_its_round_and_the_contract_is_signed_once_approved(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "contract", AMOUNT_FLOW)
    record = contract(rep, "5000.00")
    rep.patch("contracts", record["id"], {"signed_on": "2026-11-20"})
    first = submit(rep, "contract", record["id"])
    manager.request("POST", f"/approvals/{first['id']}/reject", json={"reason": "条款不全"})
    again = rep.request("POST", f"/approvals/{first['id']}/resubmit", json={}).json()
    assert again["round"] == 2
    pages = browser(client, db, tenant["manager"])
    inbox = pages.get("/approvals")
    assert inbox.status_code == 200, inbox.text
    assert "第 2 轮" in inbox.text or "2" in inbox.text
    detail = pages.get(f"/approvals/{again['id']}")
    assert detail.status_code == 200, detail.text
    assert browser(client, db, tenant["rep"]).get("/approvals?box=submitted").status_code == 200
    assert rep.request("GET", f"/contracts/{record['id']}").json()["status"] == "draft"
    decided = manager.request("POST", f"/approvals/{again['id']}/approve", json={})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert rep.request("GET", f"/contracts/{record['id']}").json()["status"] == "active"  # signed once approved
