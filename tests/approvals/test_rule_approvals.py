"""An automation rule's "require an approval" lands in the approval engine's inbox (CN-4 with AUTO-1):
the role's holders see it beside every other approval and decide it there."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.automation.actions import Firing, run_now
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api


def test_a_rules_approval_is_decided_from_the_inbox(client: TestClient, db: Database, tenant: Tenant) -> None:
    with db.unit_of_work(None, system=True) as session:
        account = Account(organization_id=tenant.organization_id, name="大客户", owner_id=tenant["rep"].user_id)
        session.add(account)
        session.flush()
        firing = Firing(
            organization_id=tenant.organization_id, rule_id=7, rule_name="大单审批",
            rule_owner_id=tenant["manager"].user_id, decision_id=42, record_type="account", record_id=account.id,
            why_zh="金额超过100万", why_en="amount over 1,000,000", now=utcnow(),
        )  # fmt: skip
        result = run_now(session, firing, {"type": "require_approval", "target": "role:director", "params": {}})
    assert result["notified"] == [tenant["director"].user_id]

    director = Api(client, tenant["director"])
    inbox = director.request("GET", "/approvals").json()["items"]
    assert [(item["id"], item["title"], item["submitted_by"]) for item in inbox] == [
        (result["approval_id"], "大客户", "rule 7: 大单审批")
    ]
    decided = director.request("POST", f"/approvals/{result['approval_id']}/approve", json={"comment": "同意"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["snapshot"]["name"]) == ("approved", "大客户")
