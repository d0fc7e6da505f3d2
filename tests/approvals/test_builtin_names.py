"""Built-in approval flows, branches and steps carry a stable key: a reader sees their names in
their own language (the flow list, the editor, an approval's steps, the API); a name someone
typed is shown as typed, and renaming a built-in step drops its key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.approvals import flows, names
from closeloop.core.errors import ValidationFailed
from closeloop.db.session import Database
from closeloop.org.models import User
from tests.approvals.test_approvals_api import contract, submit
from tests.factories import Member, Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser

BUILTIN_FLOW: dict[str, Any] = {
    "key": "contract_approval",
    "branches": [
        {"key": "large_contract", "name": "大额合同", "priority": 1,
         "conditions": [{"field": "amount", "op": "gt", "value": 200000}],
         "steps": [{"key": "two_supervisors", "name": "两级主管", "mode": "sequence",
                    "approvers": [{"kind": "supervisors", "levels": 2}]}]},
        {"key": "default", "name": "默认", "priority": 9, "conditions": [],
         "steps": [{"key": "supervisor", "name": "直属主管", "mode": "any", "approvers": [{"kind": "supervisor"}]},
                   {"name": "法务复核", "mode": "any", "approvers": [{"kind": "role", "role": "cfo"}]}]},
    ],
}  # fmt: skip


def _reads_english(db: Database, member: Member) -> None:
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.locale = "en"


@pytest.mark.parametrize(
    ("key", "name", "locale", "shown"),
    [
        ("supervisor", "直属主管", "en", "Direct supervisor"),
        ("supervisor", "Direct supervisor", "zh_CN", "直属主管"),
        ("supervisor", "直属主管", "zh_CN", "直属主管"),
        ("supervisor", "区域经理", "en", "区域经理"),  # renamed: as typed
        (None, "直属主管", "en", "直属主管"),  # typed by someone, no key: as typed
        ("no_such_key", "直属主管", "en", "直属主管"),
        ("role:manager", "manager", "en", "Sales manager"),
        ("role:manager", "manager", "zh_CN", "销售经理"),
    ],
)
def test_a_name_is_shown_in_the_readers_language_only_while_it_is_the_keys_own(
    key: str | None, name: str, locale: str, shown: str
) -> None:
    assert names.shown(name, key, locale) == shown


def test_the_definition_keeps_a_key_only_while_the_name_is_its_own() -> None:
    checked = flows.check_definition(BUILTIN_FLOW)
    assert checked["key"] == "contract_approval"
    assert [b.get("key") for b in checked["branches"]] == ["large_contract", "default"]
    assert [s.get("key") for s in checked["branches"][1]["steps"]] == ["supervisor", None]
    default = BUILTIN_FLOW["branches"][1]
    step = {**default["steps"][0], "name": "区域经理"}
    renamed = flows.check_definition({"branches": [{**default, "steps": [step]}]})
    assert "key" not in renamed["branches"][0]["steps"][0]
    with pytest.raises(ValidationFailed):
        flows.check_definition({"branches": BUILTIN_FLOW["branches"], "label": "x"})


def test_an_english_reader_sees_built_in_names_in_english(client: TestClient, db: Database, tenant: Tenant) -> None:
    ops, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    own = {"Accept-Language": "*"}  # no language asked for: each reader's own setting
    created = ops.request(
        "POST",
        "/approval-flows",
        json={"name": "合同审批", "record_type": "contract", "definition": BUILTIN_FLOW},
        headers=own,
    )
    assert created.status_code == 201, created.text
    assert created.json()["labels"]["flow"] == "合同审批"  # the VP reads Chinese
    submitted = submit(rep, "contract", contract(rep, "80000.00")["id"])

    _reads_english(db, tenant["sales_vp"])
    _reads_english(db, tenant["manager"])
    body = ops.request("GET", f"/approval-flows/{created.json()['id']}", headers=own).json()
    assert body["labels"] == {
        "flow": "Contract approval",
        "branches": [
            {"name": "Large contract", "steps": ["Two levels of supervisors"]},
            {"name": "Default", "steps": ["Direct supervisor", "法务复核"]},
        ],
    }
    assert body["definition"]["branches"][1]["steps"][0]["name"] == "直属主管"  # stored as it was given
    detail = Api(client, tenant["manager"]).request("GET", f"/approvals/{submitted['id']}", headers=own).json()
    assert detail["branch_label"] == "Default"
    assert [s["label"] for s in detail["steps"]] == ["Direct supervisor", "法务复核"]

    manager = browser(client, db, tenant["manager"], locale="en")
    page = manager.get(f"/approvals/{submitted['id']}").text
    assert "<strong>Direct supervisor</strong>" in page
    assert "Branch: Default" in page
    assert "直属主管" not in page
    listing = browser(client, db, tenant["sales_vp"], locale="en").get("/approvals/flows").text
    assert ">Contract approval</a>" in listing
    editor = client.get(f"/approvals/flows/{created.json()['id']}").text
    assert 'value="Direct supervisor"' in editor
    assert 'value="法务复核"' in editor
    assert "<h1>Contract approval</h1>" in editor

    chinese = browser(client, db, tenant["manager"]).get(f"/approvals/{submitted['id']}").text
    assert "<strong>直属主管</strong>" in chinese
