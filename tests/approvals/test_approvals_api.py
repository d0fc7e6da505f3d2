"""Conditional approvals (CN-4, 审批流) through the API: a flow branching on amount with two levels of
supervisors, 加签 and a resubmission; the snapshot does not follow later edits; the rules for a
missing approver and for the submitter approving their own request; two approvers at once; other
tenants and partner users see nothing."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from closeloop.org.notifications import Notification
from tests.concurrency import at_once
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account

Body = dict[str, Any]


def step(*approvers: Body, mode: str = "sequence", name: str = "审批") -> Body:
    return {"name": name, "mode": mode, "approvers": list(approvers)}


def flow(api: Api, record_type: str, branches: list[Body], **settings: Any) -> Body:
    response = api.request(
        "POST",
        "/approval-flows",
        json={"name": f"{record_type} 审批", "record_type": record_type, "definition": {"branches": branches},
              **settings},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    created: Body = response.json()
    return created


def contract(api: Api, amount: str) -> Body:
    account = new_account(api)
    return api.create("contracts", {"title": "设备采购合同", "account_id": account["id"], "amount": amount})


def submit(api: Api, record_type: str, record_id: int | None, **body: Any) -> Body:
    response = api.request("POST", "/approvals", json={"record_type": record_type, "record_id": record_id, **body})
    assert response.status_code == 201, response.text
    submitted: Body = response.json()
    return submitted


def act(api: Api, approval_id: int, verb: str, body: Body | None = None, status: int = 200) -> Body:
    response = api.request("POST", f"/approvals/{approval_id}/{verb}", json=body)
    assert response.status_code == status, response.text
    answered: Body = response.json()
    return answered


def approvers(detail: Body) -> list[list[tuple[str, str]]]:
    """Per step: (approver key-ish name, status) of each task in order."""
    return [[(task["approver"].split()[0], task["status"]) for task in s["tasks"]] for s in detail["steps"]]


AMOUNT_FLOW = [
    {"name": "大额", "priority": 1, "conditions": [{"field": "amount", "op": "gt", "value": 100000}],
     "steps": [step({"kind": "supervisors", "levels": 2}, name="两级主管")],
     "cc": [{"kind": "role", "role": "cfo"}]},
    {"name": "默认", "priority": 9, "conditions": [], "steps": [step({"kind": "supervisor"}, name="直属主管")]},
]  # fmt: skip


def test_branch_two_levels_add_approver_reject_and_resubmit(client: TestClient, tenant: Tenant) -> None:
    ops, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    manager, director, cfo = Api(client, tenant["manager"]), Api(client, tenant["director"]), Api(client, tenant["cfo"])
    flow(ops, "contract", AMOUNT_FLOW)

    small = submit(rep, "contract", contract(rep, "5000.00")["id"])
    assert (small["branch"], approvers(small)) == ("默认", [[("Manager", "pending")]])

    big = contract(rep, "250000.00")
    submitted = submit(rep, "contract", big["id"], comment="请审批")
    assert submitted["branch"] == "大额"
    assert approvers(submitted) == [[("Manager", "pending"), ("Director", "waiting")]]
    assert submitted["snapshot"]["amount"] == "250000.00"
    assert [c["user_id"] for c in submitted["cc"]] == [tenant["cfo"].user_id]
    box = cfo.request("GET", "/approvals", params={"box": "cc"}).json()["items"]
    assert [item["id"] for item in box] == [submitted["id"]]

    # 加签: the manager asks the VP first; the manager decides after the VP
    added = act(manager, submitted["id"], "add-approver", {"user_id": tenant["sales_vp"].user_id, "position": "before"})
    assert approvers(added) == [[("Sales_Vp", "pending"), ("Manager", "waiting"), ("Director", "waiting")]]
    assert_problem(manager.request("POST", f"/approvals/{submitted['id']}/approve"), 409, code=None)
    act(ops, submitted["id"], "approve", {"comment": "同意"})
    act(manager, submitted["id"], "approve")
    to_director = director.request("GET", "/approvals").json()["items"]
    assert [item["id"] for item in to_director] == [submitted["id"]]

    assert_problem(director.request("POST", f"/approvals/{submitted['id']}/reject", json={"reason": " "}), 422,
                   field="reason")  # fmt: skip
    rejected = act(director, submitted["id"], "reject", {"reason": "价格太低"})
    assert rejected["status"] == "rejected"
    assert approvers(rejected) == [[("Sales_Vp", "approved"), ("Manager", "approved"), ("Director", "rejected")]]

    # the rep lowers the amount and resubmits: a new round under the default branch, history kept
    rep.patch("contracts", big["id"], {"amount": "80000.00"})
    again = act(rep, submitted["id"], "resubmit", {"comment": "已调整"}, status=201)
    assert (again["round"], again["branch"], again["snapshot"]["amount"]) == (2, "默认", "80000.00")
    assert again["previous_rounds"] == [{"id": submitted["id"], "round": 1, "status": "rejected"}]
    assert_problem(rep.request("POST", f"/approvals/{submitted['id']}/resubmit"), 409, code=None)
    done = act(manager, again["id"], "approve")
    assert done["status"] == "approved"
    assert [e["action"] for e in done["timeline"]] == ["submitted", "approved", "decided"]
    first = rep.request("GET", f"/approvals/{submitted['id']}").json()
    assert [e["action"] for e in first["timeline"]] == [
        "submitted", "approver_added", "approved", "approved", "rejected", "decided",
    ]  # fmt: skip
    assert first["snapshot"]["amount"] == "250000.00"


def test_snapshot_does_not_follow_a_later_edit(client: TestClient, tenant: Tenant) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "contract", AMOUNT_FLOW)
    record = contract(rep, "5000.00")
    submitted = submit(rep, "contract", record["id"])

    rep.patch("contracts", record["id"], {"amount": "999999.00", "title": "改过的合同"})

    seen = manager.request("GET", f"/approvals/{submitted['id']}").json()
    assert (seen["snapshot"]["amount"], seen["snapshot"]["title"]) == ("5000.00", "设备采购合同")
    assert seen["branch"] == "默认"
    assert act(manager, submitted["id"], "approve")["snapshot"]["amount"] == "5000.00"


def test_missing_approver_rules_and_self_approval_skip(client: TestClient, tenant: Tenant) -> None:
    ops, director = Api(client, tenant["sales_vp"]), Api(client, tenant["director"])
    supervisor = [{"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}]
    refusing = flow(ops, "contract", supervisor, missing_approver="refuse")
    record = contract(director, "1000.00")  # the director reports to nobody

    assert_problem(
        director.request("POST", "/approvals", json={"record_type": "contract", "record_id": record["id"]}),
        422, field="steps.0", code="no_approver",
    )  # fmt: skip
    ops.request("PATCH", f"/approval-flows/{refusing['id']}", json={"missing_approver": "admin"})
    to_admin = submit(director, "contract", record["id"])
    assert approvers(to_admin) == [[("Admin", "pending")]]
    assert to_admin["steps"][0]["note"] == "fallback_role"
    act(director, to_admin["id"], "withdraw", {"comment": "先撤回"})

    ops.request("PATCH", f"/approval-flows/{refusing['id']}", json={"missing_approver": "skip"})
    skipped = act(director, to_admin["id"], "resubmit", status=201)
    assert (skipped["status"], skipped["steps"][0]["note"]) == ("approved", "no_approver_skipped")

    # the manager submits under a flow whose only approver is the manager: skipped, approved at once
    mine = [
        {"name": "默认", "conditions": [], "steps": [step({"kind": "users", "user_ids": [tenant["manager"].user_id]})]}
    ]
    quotes_flow = flow(ops, "expense", mine)
    manager = Api(client, tenant["manager"])
    claim = submit(manager, "expense", None, details={"amount": "320.50", "category": "差旅", "spent_on": "2026-11-20"})
    assert (claim["status"], claim["steps"][0]["note"], claim["snapshot"]["amount"]) == (
        "approved", "submitter_skipped", "320.50",
    )  # fmt: skip
    ops.request("PATCH", f"/approval-flows/{quotes_flow['id']}", json={"skip_submitter": False})
    own = submit(manager, "expense", None, details={"amount": "10", "category": "餐饮", "spent_on": "2026-11-20"})
    assert approvers(own) == [[("Manager", "pending")]]


def test_account_transfer_changes_the_owner_once_approved(client: TestClient, tenant: Tenant) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "account_transfer", [{"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}])
    account = new_account(rep, tenant["rep"].user_id, name="转移客户")
    bad = rep.request("POST", "/approvals", json={"record_type": "account_transfer", "record_id": account["id"],
                                                   "details": {"to_owner_id": 10**12}})  # fmt: skip
    assert_problem(bad, 422, field="details.to_owner_id")
    contact = rep.create("contacts", {"name": "王主任", "account_id": account["id"]})
    colleagues = manager.create("contacts", {"name": "李科长", "account_id": account["id"]})
    open_deal = rep.create("opportunities", {"name": "CT 采购", "account_id": account["id"], "amount": "1000.00"})
    won_deal = rep.create("opportunities", {"name": "耗材", "account_id": account["id"], "amount": "500.00"})
    rep.patch("opportunities", won_deal["id"], {"stage": "won"})
    submitted = submit(
        rep, "account_transfer", account["id"], details={"to_owner_id": tenant["rep2"].user_id, "reason": "调岗"}
    )
    assert rep.read("accounts", account["id"])["owner_id"] == tenant["rep"].user_id
    act(manager, submitted["id"], "approve")
    assert manager.read("accounts", account["id"])["owner_id"] == tenant["rep2"].user_id

    # what the previous owner held goes with the account; a colleague's contact and a won deal stay
    rep2 = Api(client, tenant["rep2"])
    assert rep2.read("contacts", contact["id"])["owner_id"] == tenant["rep2"].user_id
    assert rep2.read("opportunities", open_deal["id"])["owner_id"] == tenant["rep2"].user_id
    assert manager.read("contacts", colleagues["id"])["owner_id"] == tenant["manager"].user_id
    assert manager.read("opportunities", won_deal["id"])["owner_id"] == tenant["rep"].user_id
    assert rep.request("GET", f"/contacts/{contact['id']}").status_code == 404
    history = rep2.request("GET", f"/pools/accounts/{account['id']}/owner-changes").json()["items"]
    assert (history[0]["action"], history[0]["reason"]) == ("transferred", "调岗")
    changes = rep2.request("GET", f"/contacts/{contact['id']}/history").json()["items"]
    assert changes[0]["changes"]["owner_id"] == [tenant["rep"].user_id, tenant["rep2"].user_id]


@pytest.mark.committing
def test_two_approvers_at_once_advance_the_approval_once(client: TestClient, tenant: Tenant, db: Database) -> None:
    ops, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    both = [{"kind": "users", "user_ids": [tenant["manager"].user_id, tenant["director"].user_id]}]
    flow(ops, "contract", [{"name": "默认", "conditions": [], "steps": [step(*both, mode="any")]}])
    submitted = submit(rep, "contract", contract(rep, "1.00")["id"])

    def approve(test_client: TestClient, key: str) -> int:
        response = test_client.post(f"/api/v1/approvals/{submitted['id']}/approve", headers=tenant[key].headers)
        assert response.status_code in (200, 409), response.text
        return int(response.status_code)

    statuses = at_once(client.app, [partial(approve, key="manager"), partial(approve, key="director")])

    assert sorted(statuses) == [200, 409]
    detail = rep.request("GET", f"/approvals/{submitted['id']}").json()
    assert detail["status"] == "approved"
    assert [e["action"] for e in detail["timeline"]] == ["submitted", "approved", "decided"]
    with db.reading(None, system=True) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                tenant_clause(tenant.organization_id, AuditEntry), AuditEntry.subject_type == "approval"
            )
        ).all()
    assert sorted(actions) == ["approval.approved", "approval.decided", "approval.submitted"]


def test_other_tenants_and_partners_see_nothing(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, partner: Tenant, db: Database
) -> None:
    ops, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    created = flow(ops, "contract", AMOUNT_FLOW)
    submitted = submit(rep, "contract", contract(rep, "5000.00")["id"])
    outsider, dealer = Api(client, other_tenant["admin"]), Api(client, partner["partner_user"])

    assert_problem(outsider.request("GET", f"/approvals/{submitted['id']}"), 404)
    assert_problem(outsider.request("POST", f"/approvals/{submitted['id']}/approve"), 404)
    assert_problem(outsider.request("GET", f"/approval-flows/{created['id']}"), 404)
    assert outsider.request("GET", "/approvals", params={"box": "all"}).json()["items"] == []
    assert_problem(dealer.request("GET", "/approvals"), 403)
    assert_problem(dealer.request("POST", f"/approvals/{submitted['id']}/approve"), 403)
    # a rep of the same tenant who has no part in it does not find it either
    assert_problem(Api(client, tenant["rep2"]).request("GET", f"/approvals/{submitted['id']}"), 404)
    with db.reading(None, system=True) as session:
        told = session.scalars(
            select(Notification.user_id).where(
                tenant_clause(tenant.organization_id, Notification), Notification.kind == "approval.task"
            )
        ).all()
    assert told == [tenant["manager"].user_id]


def test_under_a_contract_flow_a_contract_takes_effect_only_once_approved(client: TestClient, tenant: Tenant) -> None:
    """The web form withholds the status under a flow; the API (and every other path) refuses it too."""
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    account = new_account(rep)
    unguarded = rep.create("contracts", {"title": "无审批流时", "account_id": account["id"], "amount": "100.00"})
    allowed = rep.patch("contracts", unguarded["id"], {"status": "active", "signed_on": "2026-11-20"})
    assert allowed.status_code == 200, allowed.text  # no flow yet: the rep's say-so is enough

    flow(ops, "contract", AMOUNT_FLOW)
    refused = rep.request(
        "POST",
        "/contracts",
        json={"title": "直接生效", "account_id": account["id"], "amount": "100.00", "status": "active",
              "signed_on": "2026-11-20"},
    )  # fmt: skip
    assert_problem(refused, 409, code="needs_approval", field="status")
    record = contract(rep, "5000.00")
    bypass = rep.patch("contracts", record["id"], {"status": "active", "signed_on": "2026-11-20"})
    assert_problem(bypass, 409, code="needs_approval", field="status")
    assert rep.read("contracts", record["id"])["status"] == "draft"  # nothing half-written

    assert rep.patch("contracts", record["id"], {"signed_on": "2026-11-20"}).status_code == 200
    act(manager, submit(rep, "contract", record["id"])["id"], "approve")
    assert rep.read("contracts", record["id"])["status"] == "active"  # the approval's decision made it so
    moved_on = rep.patch("contracts", unguarded["id"], {"status": "completed"})
    assert moved_on.status_code == 200, moved_on.text  # an active contract moves on freely


@pytest.mark.parametrize("position", ["before", "after"])
def test_add_approver_never_routes_a_request_back_to_its_submitter(
    client: TestClient, tenant: Tenant, position: str
) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "contract", AMOUNT_FLOW)
    submitted = submit(rep, "contract", contract(rep, "5000.00")["id"])

    refused = manager.request(
        "POST",
        f"/approvals/{submitted['id']}/add-approver",
        json={"user_id": tenant["rep"].user_id, "position": position},
    )

    assert_problem(refused, 422, field="user_id")
    assert approvers(rep.request("GET", f"/approvals/{submitted['id']}").json()) == [[("Manager", "pending")]]
    assert_problem(rep.request("POST", f"/approvals/{submitted['id']}/approve"), 403, code=None)


def test_an_expense_claim_is_checked_and_titled_in_each_readers_language(client: TestClient, tenant: Tenant) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "expense", [{"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}])
    tomorrow = (calendar.today(settings.business_timezone) + timedelta(days=1)).isoformat()
    good = {"amount": "100", "category": "差旅", "spent_on": "2026-11-20"}

    def refused(details: Body, field: str, code: str) -> str:
        answer = rep.request("POST", "/approvals", json={"record_type": "expense", "details": details})
        problem = assert_problem(answer, 422, field=field, code=code)
        return str(next(e["message"] for e in problem["errors"] if e["field"] == field))

    refused(good | {"category": "  "}, "details.category", "required")
    assert tomorrow in refused(good | {"spent_on": tomorrow}, "details.spent_on", "future")
    refused(good | {"spent_on": "2026-02-30"}, "details.spent_on", "invalid")
    refused(good | {"spent_on": ""}, "details.spent_on", "required")
    assert "2 decimals" in refused(good | {"amount": "100.123"}, "details.amount", "too_precise")
    assert "999,999,999,999.99" in refused(good | {"amount": "1e20"}, "details.amount", "too_large")
    assert "positive" in refused(good | {"amount": "-5"}, "details.amount", "not_positive")
    refused(good | {"amount": "NaN"}, "details.amount", "invalid")
    wrong_everywhere = {"amount": "1.001", "spent_on": tomorrow}
    every = rep.request("POST", "/approvals", json={"record_type": "expense", "details": wrong_everywhere})
    problem = assert_problem(every, 422)
    assert [e["field"] for e in problem["errors"]] == ["details.amount", "details.category", "details.spent_on"]

    claim = submit(rep, "expense", None, details=good | {"amount": "100.100"})  # a trailing zero is not rounding
    # the submitter asked for English (the tests' headers do), the manager reads Chinese
    assert (claim["snapshot"]["amount"], claim["title"]) == ("100.10", "Expense · 差旅 ¥100.10")
    inbox = manager.request("GET", "/approvals", headers={"Accept-Language": "zh-CN"}).json()["items"]
    assert [item["title"] for item in inbox if item["id"] == claim["id"]] == ["费用报销 · 差旅 ¥100.10"]
    notices = manager.request("GET", "/notifications").json()["items"]
    assert {"zh_CN": "待您审批:费用报销 · 差旅 ¥100.10", "en": "Waiting for your approval: Expense · 差旅 ¥100.10"} in [
        n["title"] for n in notices
    ], notices


def test_a_contract_in_force_or_already_approved_is_not_submitted_again(client: TestClient, tenant: Tenant) -> None:
    ops, rep, manager = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    flow(ops, "contract", AMOUNT_FLOW)
    record = contract(rep, "5000.00")
    rep.patch("contracts", record["id"], {"signed_on": "2026-11-20"})
    first = submit(rep, "contract", record["id"])
    again = rep.request("POST", "/approvals", json={"record_type": "contract", "record_id": record["id"]})
    assert_problem(again, 409, field="record_id", code="approval_pending")
    act(manager, first["id"], "approve")
    assert rep.read("contracts", record["id"])["status"] == "active"

    in_force = rep.request("POST", "/approvals", json={"record_type": "contract", "record_id": record["id"]})
    assert "already in force" in assert_problem(in_force, 409, field="record_id", code="already_active")["detail"]
    assert rep.request("GET", "/approvals", params={"box": "submitted"}).json()["items"][0]["id"] == first["id"]

    unsigned = contract(rep, "6000.00")
    act(manager, submit(rep, "contract", unsigned["id"])["id"], "approve")
    assert rep.read("contracts", unsigned["id"])["status"] == "draft"  # approved, waiting for its signing date
    twice = rep.request("POST", "/approvals", json={"record_type": "contract", "record_id": unsigned["id"]})
    assert_problem(twice, 409, field="record_id", code="already_approved")


def test_a_condition_that_could_never_hold_is_refused_naming_it(client: TestClient, tenant: Tenant) -> None:
    """``amount > "abc"`` was saved and sent every large claim down the default branch, past the CFO:
    a condition's field must be one the record type has and its value must fit the field's kind."""
    ops = Api(client, tenant["sales_vp"])
    default = {"name": "默认", "priority": 9, "conditions": [], "steps": [step({"kind": "supervisor"})]}

    def refused(condition: Body, code: str) -> None:
        branches = [{"name": "大额", "priority": 1, "conditions": [condition], "steps": [step({"kind": "supervisor"})]},
                    default]  # fmt: skip
        response = ops.request(
            "POST",
            "/approval-flows",
            json={"name": "x", "record_type": "expense", "definition": {"branches": branches}},
        )
        where = "definition.branches.0.conditions.0." + ("field" if code == "not_a_field" else "value")
        assert_problem(response, 422, field=where, code=code)

    refused({"field": "amount", "op": "gt", "value": "abc"}, "not_a_number")
    refused({"field": "amount", "op": "in", "value": [5000, "lots"]}, "not_a_number")
    refused({"field": "nosuchfield", "op": "eq", "value": 1}, "not_a_field")
    refused({"field": "spent_on", "op": "gt", "value": "notadate"}, "not_a_date")
    refused({"field": "category", "op": "gte", "value": "travel"}, "not_ordered")
    refused({"field": "amount", "op": "contains", "value": "5"}, "not_text")
    listed = ops.request("GET", "/approval-flows").json()
    assert all(f["name"] != "x" for f in (listed["items"] if isinstance(listed, dict) else listed))

    created = flow(ops, "expense", [
        {"name": "大额", "priority": 1, "conditions": [{"field": "amount", "op": "gt", "value": "10000"},
                                                       {"field": "spent_on", "op": "gte", "value": "2026-01-01"},
                                                       {"field": "category", "op": "in", "value": ["travel", "hotel"]}],
         "steps": [step({"kind": "role", "role": "cfo"})]},
        default,
    ])  # fmt: skip
    edited = ops.request(
        "PATCH",
        f"/approval-flows/{created['id']}",
        json={"definition": {"branches": [{**default, "conditions": []}, {
            "name": "大额", "priority": 1, "conditions": [{"field": "amount", "op": "gt", "value": "abc"}],
            "steps": [step({"kind": "supervisor"})]}]}},
        headers={"If-Match": f'"{created["version"]}"'} if "version" in created else {},
    )  # fmt: skip
    assert_problem(edited, 422, field="definition.branches.1.conditions.0.value", code="not_a_number")


def test_a_second_enabled_flow_for_the_same_departments_is_refused(client: TestClient, tenant: Tenant) -> None:
    """``flow_for`` takes the lowest id: a second enabled flow for the same record type and the same
    departments would never be used, and nobody would know."""
    ops = Api(client, tenant["sales_vp"])
    first = flow(
        ops, "expense", [{"name": "默认", "priority": 9, "conditions": [], "steps": [step({"kind": "supervisor"})]}]
    )
    branches = {"branches": [{"name": "默认", "conditions": [], "steps": [step({"kind": "role", "role": "cfo"})]}]}
    body = {"name": "second", "record_type": "expense", "definition": branches}
    response = ops.request("POST", "/approval-flows", json=body)
    problem = assert_problem(response, 409, field="is_enabled", code="overlapping_flow")
    assert str(first["id"]) in problem["detail"]
    second = ops.request("POST", "/approval-flows", json=body | {"is_enabled": False})
    assert second.status_code == 201, second.text
    enabling = ops.request("PATCH", f"/approval-flows/{second.json()['id']}", json={"is_enabled": True})
    assert enabling.status_code == 409, enabling.text
    ops.request("PATCH", f"/approval-flows/{first['id']}", json={"is_enabled": False})
    assert ops.request("PATCH", f"/approval-flows/{second.json()['id']}", json={"is_enabled": True}).status_code == 200


def test_flows_that_overlapped_before_the_rule_stay_editable(client: TestClient, tenant: Tenant, db: Database) -> None:
    """Two enabled flows saved before overlaps were refused: renaming or mending either is still
    allowed; only switching on or moving departments is checked."""
    from sqlalchemy import update

    from closeloop.approvals.models import ApprovalFlow

    ops = Api(client, tenant["sales_vp"])
    default = [{"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}]
    first = flow(ops, "quote", default)
    second = flow(ops, "quote", default, is_enabled=False)
    with db.unit_of_work(tenant["admin"].actor) as session:  # as older data could be
        session.execute(update(ApprovalFlow).where(ApprovalFlow.id == second["id"]).values(is_enabled=True))
    renamed = ops.request("PATCH", f"/approval-flows/{first['id']}", json={"name": "报价审批（旧）"})
    assert renamed.status_code == 200, renamed.text
    chinese = ops.request("PATCH", f"/approval-flows/{second['id']}", json={"is_enabled": False})
    assert chinese.status_code == 200, chinese.text
    again = client.patch(
        f"/api/v1/approval-flows/{second['id']}",
        json={"is_enabled": True},
        headers={**tenant["sales_vp"].headers, "Accept-Language": "zh-CN"},
    )
    problem = assert_problem(again, 409, field="is_enabled", code="overlapping_flow")
    assert f"审批流 {first['id']}（报价审批（旧））已对同类记录启用" in problem["detail"]
