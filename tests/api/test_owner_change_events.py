"""An owner change is the same event whichever path made it: a lead given an owner by an edit (the
API's PATCH or the web form) is ``lead.assigned`` as the assign call is, so rules keyed on it fire;
an account handed over by an edit is ``account.transferred``."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.core.clock import utcnow
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.events.models import OutboxEvent
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.test_settings_pages import browser, csrf_of


def _rule_on(db: Database, tenant: Tenant, event_type: str) -> int:
    """An enabled rule that notifies the record's owner on ``event_type``."""
    manager = tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": event_type},
        "conditions": [],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }
    with db.unit_of_work(manager) as session:
        return automation.create_rule(
            session, manager, name=f"on {event_type}", definition=definition, enabled=True, undo_seconds=0
        ).id


def _events(db: Database, tenant: Tenant, subject_type: str, subject_id: int) -> list[str]:
    with db.reading(None, system=True) as session:
        return list(
            session.scalars(
                select(OutboxEvent.event_type)
                .where(
                    tenant_clause(tenant.organization_id, OutboxEvent),
                    OutboxEvent.subject_type == subject_type,
                    OutboxEvent.subject_id == subject_id,
                )
                .order_by(OutboxEvent.id)
            )
        )


def _decided_for(db: Database, api: Api, rule_id: int, record_type: str, record_id: int) -> int:
    """How many decisions ``rule_id`` wrote about the record, once the outbox is drained."""
    engine.drain(db)
    found = api.request(
        "GET", "/decisions", params={"rule_id": rule_id, "record_type": record_type, "record_id": record_id}
    )
    assert found.status_code == 200, found.text
    return len(found.json()["items"])


def test_a_patch_that_gives_a_lead_an_owner_is_an_assignment(client: TestClient, db: Database, tenant: Tenant) -> None:
    rule_id = _rule_on(db, tenant, "lead.assigned")
    manager = Api(client, tenant["manager"])
    lead = manager.create("leads", {"name": f"孙七 {tag()}", "company": "某某医疗"})
    assert lead["status"] == "new"

    renamed = manager.patch("leads", lead["id"], {"company": "某某医疗器械"})
    assert renamed.status_code == 200, renamed.text
    assert _decided_for(db, manager, rule_id, "lead", lead["id"]) == 0

    given = manager.patch("leads", lead["id"], {"owner_id": tenant["rep"].user_id, "title": "采购科长"})

    assert given.status_code == 200, given.text
    assert given.json()["owner_id"] == tenant["rep"].user_id
    assert given.json()["status"] == "working"  # as the assign call and a create with an owner do
    assert _events(db, tenant, "lead", lead["id"]) == ["lead.created", "lead.updated", "lead.updated", "lead.assigned"]
    assert _decided_for(db, manager, rule_id, "lead", lead["id"]) == 1
    history = [entry["action"] for entry in manager.request("GET", f"/leads/{lead['id']}/history").json()["items"]]
    assert history[:2] == ["lead.assigned", "lead.updated"]


def test_a_patch_that_keeps_the_owner_or_sets_the_status_itself(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    manager = Api(client, tenant["manager"])
    rep = tenant["rep"].user_id
    lead = manager.create("leads", {"name": f"周八 {tag()}", "owner_id": rep})
    assert lead["status"] == "working"

    same = manager.patch("leads", lead["id"], {"owner_id": rep, "notes": "再联系"})
    assert same.status_code == 200, same.text
    # handed to rep2 while disqualified in the same edit: the status asked for stands
    moved = manager.patch(
        "leads",
        lead["id"],
        {"owner_id": tenant["rep2"].user_id, "status": "disqualified", "disqualified_reason": "无预算"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "disqualified"
    # back to the inbox by an edit: unassigned, and an assignment event all the same
    returned = manager.patch("leads", lead["id"], {"owner_id": None, "status": "working"})
    assert returned.status_code == 200, returned.text

    assert _events(db, tenant, "lead", lead["id"]) == [
        "lead.created",
        "lead.updated",
        "lead.updated",
        "lead.assigned",
        "lead.updated",
        "lead.assigned",
    ]


def test_the_web_edit_form_that_changes_the_owner_is_an_assignment(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rule_id = _rule_on(db, tenant, "lead.assigned")
    lead = Api(client, tenant["manager"]).create("leads", {"name": f"吴九 {tag()}"})
    manager = browser(client, db, tenant["manager"], locale="en")
    form = manager.get(f"/leads/{lead['id']}/edit")
    assert form.status_code == 200

    saved = manager.post(
        f"/leads/{lead['id']}/edit",
        data={
            "csrf": csrf_of(form.text),
            "version": str(lead["version"]),
            "name": lead["name"],
            "source": lead["source"],
            "status": lead["status"],
            "owner_id": str(tenant["rep"].user_id),
        },
        follow_redirects=False,
    )

    assert saved.status_code == 303, saved.text
    assert _events(db, tenant, "lead", lead["id"])[-1] == "lead.assigned"
    assert _decided_for(db, Api(client, tenant["admin"]), rule_id, "lead", lead["id"]) == 1


def test_an_account_handed_over_by_an_edit_is_a_transfer(client: TestClient, db: Database, tenant: Tenant) -> None:
    rule_id = _rule_on(db, tenant, "account.transferred")
    manager = Api(client, tenant["manager"])
    account = manager.create("accounts", {"name": f"华山医院 {tag()}", "owner_id": tenant["rep"].user_id})

    assert manager.patch("accounts", account["id"], {"city": "上海"}).status_code == 200
    moved = manager.patch("accounts", account["id"], {"owner_id": tenant["rep2"].user_id})

    assert moved.status_code == 200, moved.text
    assert _events(db, tenant, "account", account["id"]) == [
        "account.created",
        "account.updated",
        "account.updated",
        "account.transferred",
    ]
    assert _decided_for(db, manager, rule_id, "account", account["id"]) == 1


def test_a_rule_that_assigns_a_lead_emits_the_assignment(client: TestClient, db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [],
        "actions": [{"type": "assign", "target": "team:reports", "params": {"strategy": "round_robin"}}],
    }
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="分配", definition=definition, enabled=True, undo_seconds=0)
    lead = Api(client, tenant["admin"]).create("leads", {"name": f"郑十 {tag()}"})

    engine.drain(db)
    engine.run_due_actions(db, now=utcnow() + timedelta(seconds=1))

    assigned = Api(client, tenant["admin"]).read("leads", lead["id"])
    assert (assigned["owner_id"], assigned["status"]) == (tenant["rep"].user_id, "working")
    assert _events(db, tenant, "lead", lead["id"]) == ["lead.created", "lead.updated", "lead.assigned"]
