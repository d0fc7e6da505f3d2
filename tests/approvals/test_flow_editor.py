"""The approval-flow editor as a form (CN-4): sales ops create a flow, add a conditional branch with
two steps and a CC on the page and the flow routes by it; a wrong row is refused with its problem
next to it ("第2步：角色不存在") and the rows as sent; reps may not open the flows at all (page and
API), managers read them without a save button."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from closeloop.approvals import subjects
from closeloop.db.session import Database
from tests.approvals.test_approvals_api import contract, flow, step, submit
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_no_english_in_chinese_pages import chinese_names, english_words
from tests.web.test_settings_pages import browser, csrf_of

__all__ = ["chinese_names"]

SETTINGS = {"name": "合同审批", "is_enabled": "1", "missing_approver": "admin", "fallback_role": "admin",
            "skip_submitter": "1"}  # fmt: skip


def rows(*, role: str = "cfo", field: str = "amount") -> list[tuple[str, str]]:
    """A big-amount branch (key 7, sent before the default one) with two steps and a CC."""
    return [
        ("b3.name", "默认"), ("b3.priority", "9"),
        ("b3.s0.name", "直属主管"), ("b3.s0.mode", "any"), ("b3.s0.a0.kind", "supervisor"),
        ("b7.name", "大额"), ("b7.priority", "1"),
        ("b7.c2.field", field), ("b7.c2.op", "gt"), ("b7.c2.value", "200000"),
        ("b7.s5.name", "两级主管"), ("b7.s5.mode", "sequence"), ("b7.s5.a1.kind", "supervisors"),
        ("b7.s5.a1.levels", "2"),
        ("b7.s9.name", "财务"), ("b7.s9.mode", "any"), ("b7.s9.a0.kind", "role"), ("b7.s9.a0.role", role),
        ("b7.s9.a0.within", ""),
        ("b7.cc4.kind", "role"), ("b7.cc4.role", "sales_vp"),
    ]  # fmt: skip


def post(page: TestClient, path: str, token: str, fields: list[tuple[str, str]]) -> Any:
    body = [("csrf", token), *SETTINGS.items(), *fields]
    return page.post(path, content=_encode(body), headers={"Content-Type": "application/x-www-form-urlencoded"})


def new_flow(ops: Api, record_type: str) -> int:
    default = {"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}
    return int(flow(ops, record_type, [default])["id"])


def _encode(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


def test_a_flow_written_in_the_form_routes_submissions(client: TestClient, db: Database, tenant: Tenant) -> None:
    vp = browser(client, db, tenant["sales_vp"])
    listing = vp.get("/approvals/flows")
    created = vp.post("/approvals/flows", data={"csrf": csrf_of(listing.text), "name": "合同审批",
                                                "record_type": "contract"})  # fmt: skip
    assert created.status_code == 200, created.text
    assert "直属主管" in created.text  # the starting default branch, as rows
    assert 'name="b0.s0.a0.kind"' in created.text
    path = str(created.url.path)
    saved = post(vp, path, csrf_of(created.text), rows())
    assert saved.status_code == 200, saved.text
    assert 'id="flow-saved"' in saved.text
    assert 'value="大额"' in saved.text

    flow_id = int(path.rsplit("/", 1)[1])
    stored = Api(client, tenant["sales_vp"]).request("GET", f"/approval-flows/{flow_id}").json()
    big, default = stored["definition"]["branches"]
    assert big["conditions"] == [{"field": "amount", "op": "gt", "value": 200000}]
    assert [(s["name"], s["mode"], s["approvers"]) for s in big["steps"]] == [
        ("两级主管", "sequence", [{"kind": "supervisors", "levels": 2}]),
        ("财务", "any", [{"kind": "role", "role": "cfo", "within": None}]),
    ]
    assert big["cc"] == [{"kind": "role", "role": "sales_vp", "within": None}]
    assert (default["name"], default["conditions"]) == ("默认", [])

    rep = Api(client, tenant["rep"])
    assert submit(rep, "contract", contract(rep, "250000.00")["id"])["branch"] == "大额"
    assert submit(rep, "contract", contract(rep, "150000.00")["id"])["branch"] == "默认"


def test_a_wrong_row_is_shown_next_to_itself_and_nothing_is_saved(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    ops = Api(client, tenant["sales_vp"])
    flow_id = new_flow(ops, "contract")
    vp = browser(client, db, tenant["sales_vp"])
    path = f"/approvals/flows/{flow_id}"
    token = csrf_of(vp.get(path).text)

    refused = post(vp, path, token, rows(role="nobody"))
    assert refused.status_code == 422
    assert "第2步：角色不存在" in refused.text
    assert 'data-error-for="b7.s9.a0.role"' in refused.text
    assert 'name="b7.s9.a0.role" aria-invalid="true"' in refused.text
    assert 'value="两级主管"' in refused.text  # the rows as sent, not as stored
    unknown = post(vp, path, token, rows(field="colour"))
    assert unknown.status_code == 422
    assert unknown.text.count("条件1：字段不存在") == 2  # in the list and beside the field, once each
    no_default = post(vp, path, token, [r for r in rows() if not r[0].startswith("b3.")])
    assert no_default.status_code == 422
    assert "请添加一个默认分支" in no_default.text
    assert ops.request("GET", f"/approval-flows/{flow_id}").json()["revision"] == 1

    english = browser(client, db, tenant["sales_vp"], locale="en")
    refused = post(english, path, csrf_of(english.get(path).text), rows(role="nobody"))
    assert "Step 2: no such role" in refused.text


def test_reps_may_not_open_the_flows_and_managers_only_read_them(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    ops = Api(client, tenant["sales_vp"])
    flow_id = new_flow(ops, "expense")
    rep_api = Api(client, tenant["rep"])
    assert rep_api.request("GET", "/approval-flows").status_code == 403
    assert rep_api.request("GET", f"/approval-flows/{flow_id}").status_code == 403
    rep = browser(client, db, tenant["rep"])
    assert rep.get("/approvals/flows").status_code == 403
    assert rep.get(f"/approvals/flows/{flow_id}").status_code == 403
    assert 'href="/approvals/flows"' not in rep.get("/approvals").text

    manager = browser(client, db, tenant["manager"])
    page = manager.get(f"/approvals/flows/{flow_id}")
    assert page.status_code == 200
    assert 'id="save-flow"' not in page.text
    assert "只读" in page.text
    refused = manager.post(page.url.path, data={"csrf": csrf_of(page.text), **SETTINGS, "b0.name": "默认"})
    assert refused.status_code == 403


def test_the_editor_of_every_record_type_holds_no_english(
    client: TestClient, db: Database, tenant: Tenant, chinese_names: None
) -> None:
    ops = Api(client, tenant["sales_vp"])
    ids = []
    for record_type in ("quote", "contract", "collection", "expense", "account_transfer"):
        subject = subjects.get(record_type)
        assert subject is not None
        approvers: list[dict[str, Any]] = [
            {"kind": "supervisors", "levels": 2},
            {"kind": "role", "role": "director", "within": "region"},
            {"kind": "users", "user_ids": [tenant["manager"].user_id]},
            {"kind": "chosen"},
        ]
        conditional = {
            "name": "条件",
            "priority": 1,
            "conditions": [
                {"field": name, "op": "eq", "value": "2026-01-01" if kind == "date" else 1}
                for name, kind in subject.field_kinds.items()
            ],
            "steps": [step(*approvers, mode="all")],
            "cc": [{"kind": "role", "role": "cfo"}],
        }
        default = {"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}
        ids.append(flow(ops, record_type, [conditional, default], name="审批流程")["id"])
    vp = browser(client, db, tenant["sales_vp"])
    for flow_id in ids:
        page = vp.get(f"/approvals/flows/{flow_id}")
        assert page.status_code == 200
        assert english_words(page.text) == set(), flow_id


def test_a_second_flow_of_a_kind_starts_switched_off_and_says_why(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """Two enabled flows for the same record type would leave one unused: the editor's new flow
    starts switched off beside an enabled one, and switching it on is refused in the reader's words."""
    ops = Api(client, tenant["sales_vp"])
    first = flow(ops, "contract", [{"name": "默认", "conditions": [], "steps": [step({"kind": "supervisor"})]}])
    vp = browser(client, db, tenant["sales_vp"])
    listing = vp.get("/approvals/flows")
    created = vp.post(
        "/approvals/flows",
        data={"csrf": csrf_of(listing.text), "name": "第二个合同审批", "record_type": "contract"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"].endswith("?off=1")
    page = vp.get(created.headers["location"])
    assert "已有同类审批流在启用中" in page.text
    second = int(created.headers["location"].split("/")[-1].split("?")[0])
    assert ops.request("GET", f"/approval-flows/{second}").json()["is_enabled"] is False
    editor = vp.get(f"/approvals/flows/{second}")
    refused = post(vp, f"/approvals/flows/{second}", csrf_of(editor.text), rows())
    assert refused.status_code == 409
    assert f"（{first['name']}）" in refused.text
    assert ops.request("GET", f"/approval-flows/{second}").json()["is_enabled"] is False
