"""The webhook page (allowed hosts for administrators, the delivery log for whoever reads
decisions) and the decisions panel on the account's 360° page: why in the reader's language, undo
while the window is open, masked fields never shown."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.models import PendingAction
from closeloop.crm import fieldsecurity, records
from closeloop.db.scope import RowAccess
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.factories import Tenant
from tests.web.test_settings_pages import browser, csrf_of


def test_administrators_manage_hosts_others_read_the_delivery_log(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = browser(client, db, tenant["admin"], locale="en")
    page = admin.get("/automation/webhooks")
    assert page.status_code == 200
    assert "Allowed webhook hosts" in page.text
    added = admin.post("/automation/webhooks/hosts", data={"csrf": csrf_of(page.text), "host": "Hooks.Example.com"})
    assert added.status_code == 201
    assert "data-secret" in added.text
    assert 'data-host="hooks.example.com"' in added.text
    assert "data-secret" not in admin.get("/automation/webhooks").text  # the secret is shown once
    manager = browser(client, db, tenant["manager"])
    page = manager.get("/automation/webhooks")
    assert page.status_code == 200
    assert "Webhook 投递记录" in page.text
    assert "允许的 Webhook 主机" not in page.text
    refused = manager.post("/automation/webhooks/hosts", data={"csrf": csrf_of(page.text), "host": "evil.example.com"})
    assert refused.status_code == 403
    with db.reading(tenant["admin"].actor) as session:
        [host] = automation.webhook_hosts(session, tenant["admin"].actor)
    admin = browser(client, db, tenant["admin"], locale="en")
    token = csrf_of(admin.get("/automation/webhooks").text)
    removed = admin.post(f"/automation/webhooks/hosts/{host.id}/remove", data={"csrf": token}, follow_redirects=False)
    assert removed.status_code == 303
    assert "data-host=" not in admin.get("/automation/webhooks").text


def test_the_account_page_shows_why_rules_fired_and_undoes_a_waiting_action(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    manager, rep = tenant["manager"].actor, tenant["rep"].actor
    definition = {
        "trigger": {"kind": "event", "event": "account.updated"},
        "conditions": [
            {"field_or_metric": "account.tier", "op": "==", "value": "A"},
            {"field_or_metric": "account.employees", "op": ">", "value": 1000},
        ],
        "actions": [{"type": "create_task", "target": "owner", "params": {"title": "大客户回访"}}],
    }
    accounts = records.record_type_for("account")
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="大客户", definition=definition, enabled=True)
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        values = {"tier": "A", "employees": 5000, "owner_id": rep.user_id}
        account_id = records.create(session, admin, accounts, {"name": "瑞金医院", **values}).id
        other_id = records.create(session, admin, accounts, {"name": "别家", **values}).id
    with db.unit_of_work(rep) as session:
        for record_id in (account_id, other_id):
            records.update(
                session,
                rep,
                accounts,
                records.get(session, rep, accounts, record_id, access=RowAccess.WRITE),
                {"phone": "021-1"},
            )
    engine.drain(db)
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:  # reps may not read head counts
        fieldsecurity.apply_change(session, system, "account", "employees", {"rep": {"read": False, "edit": False}})
    page = browser(client, db, tenant["manager"]).get(f"/accounts/{account_id}")
    assert "自动化决策" in page.text
    assert "规则「大客户」" in page.text
    assert "•••" not in page.text.split('id="decisions"')[1]  # the manager may read the head count
    assert page.text.count("data-decision=") == 1  # the other account's decision is not here
    rep_browser = browser(client, db, tenant["rep"], locale="en")
    page = rep_browser.get(f"/accounts/{account_id}")
    panel = page.text.split('id="decisions"')[1]
    assert "Automation decisions" in panel
    assert "Rule “大客户”" in panel
    assert "•••" in panel
    with db.reading(None, system=True) as session:
        pending = session.scalar(select(PendingAction).where(PendingAction.record_id == account_id))
        assert pending is not None
        assert pending.status == "pending"
    undone = rep_browser.post(
        f"/automation/pending/{pending.id}/cancel",
        data={"csrf": csrf_of(page.text), "back": f"/accounts/{account_id}"},
        follow_redirects=False,
    )
    assert undone.status_code == 303
    assert undone.headers["location"] == f"/accounts/{account_id}#decisions"
    with db.reading(None, system=True) as session:
        assert session.get_one(PendingAction, pending.id).status == "cancelled"
    api = client.get(
        f"/api/v1/decisions?record_type=account&record_id={account_id}", headers=tenant["rep"].headers
    ).json()["items"]
    assert api[0]["conditions"][1]["seen"] == "•••"
    assert "5000" not in api[0]["why"]
    assert "5,000" not in api[0]["why"]


def test_an_opportunitys_decision_shows_on_its_page_and_its_accounts(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    manager = tenant["manager"].actor
    accounts, opportunities = records.record_type_for("account"), records.record_type_for("opportunity")
    definition = {
        "trigger": {"kind": "event", "event": "opportunity.updated"},
        "conditions": [],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="商机变更", definition=definition, enabled=True)
        account_id = records.create(session, manager, accounts, {"name": "中山医院"}).id
        deal = records.create(session, manager, opportunities, {"name": "MRI", "account_id": account_id})
        records.update(session, manager, opportunities, deal, {"name": "MRI 二期"})
        deal_id = deal.id
    engine.drain(db)
    signed_in = browser(client, db, tenant["manager"])
    for path in (f"/opportunities/{deal_id}", f"/accounts/{account_id}"):
        page = signed_in.get(path)
        assert page.status_code == 200
        assert 'id="decisions"' in page.text
        assert "规则「商机变更」" in page.text
