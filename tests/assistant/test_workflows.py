"""Assistant workflows as data (AST-6): an inbound inquiry on a hospital account wakes the configured
workflow through the outbox drain and the task queue, and the rep who owns it gets a brief — composed
with that rep's permissions only (AST-7): no record, field or collection the rep may not see."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.api.routers import knowledge as knowledge_router
from closeloop.assistant import briefs
from closeloop.assistant.knowledge import service as knowledge
from closeloop.automation import engine
from closeloop.db.session import Database
from closeloop.governance.fieldsecurity.models import FieldSecurityRule
from closeloop.org.notifications import Notification
from closeloop.worker import tasks
from tests.factories import Tenant
from tests.samples import Api, assert_problem
from tests.web.test_settings_pages import browser, csrf_of


def test_a_hospital_inquiry_brings_its_rep_a_brief_with_only_what_the_rep_may_see(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge_router, "enqueue_indexing", lambda org, doc: None)
    monkeypatch.setattr(engine, "_event_hooks", [])
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks, "enqueue_assistant_workflow", lambda *args: queued.append(args))
    engine.on_event(tasks.queue_assistant_workflows)
    admin, rep, vp = Api(client, tenant["admin"]), Api(client, tenant["rep"]), Api(client, tenant["sales_vp"])

    # configured through the page from the shipped example
    page = browser(client, db, tenant["admin"])
    listing = page.get("/assistant/workflows")
    assert "助手工作流" in listing.text
    added = page.post(
        "/assistant/workflows/examples/hospital_inquiry_brief",
        data={"csrf": csrf_of(listing.text)},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    workflow = admin.request("GET", "/assistant/workflows").json()["items"][0]
    assert workflow["event_type"] == "activity.created"
    assert workflow["enabled"]
    bad = admin.request(
        "POST",
        "/assistant/workflows",
        json={
            "name": "x",
            "event_type": "activity.created",
            "definition": {"conditions": [{"field": "credit", "value": "1"}]},
        },
    )
    assert_problem(bad, 422)
    assert_problem(
        rep.request(
            "POST", "/assistant/workflows", json={"name": "y", "event_type": "activity.created", "definition": {}}
        ),
        403,
    )

    hospital = rep.create("accounts", {"name": "华山医院", "industry": "hospital"})
    school = rep.create("accounts", {"name": "复旦中学", "industry": "education"})
    rep.create("opportunities", {"name": "超声采购", "account_id": hospital["id"], "amount": "500000.00"})
    # what the rep may not see: another rep's deal on the account, a masked field, a managers' collection
    admin.create(
        "opportunities",
        {"name": "机密扩容项目", "account_id": hospital["id"], "owner_id": tenant["rep2"].user_id},
    )
    assert vp.request("PATCH", f"/accounts/{hospital['id']}", json={"credit_line": "7654321.00"}).status_code == 200
    secret = admin.request("POST", "/knowledge/collections", json={"name": "管理层", "access": []}).json()["id"]
    uploaded = client.post(
        f"/api/v1/knowledge/collections/{secret}/documents",
        files={"file": ("底价.md", "# 超声采购底价\n\n超声采购的底价是报价的七折。\n".encode(), "text/markdown")},
        headers=admin.headers(),
    ).json()
    assert knowledge.index_document(db, tenant.organization_id, uploaded["id"]) == "ready"

    inquiry = rep.create(
        "activities",
        {"kind": "email", "direction": "inbound", "subject": "询价：超声", "account_id": hospital["id"]},
    )
    rep.create("activities", {"kind": "email", "direction": "inbound", "subject": "询价", "account_id": school["id"]})
    engine.drain(db)
    assert len(queued) == 2  # both inquiries woke the workflow; its conditions decide in the task
    statuses = [tasks.run_assistant_workflow(*args) for args in queued]
    assert statuses == ["delivered", "skipped"]
    assert tasks.run_assistant_workflow(*queued[0]) == "delivered"  # once per event

    with db.reading(None, system=True) as session:
        notes = list(session.scalars(select(Notification).where(Notification.user_id == tenant["rep"].user_id)))
    brief = [n for n in notes if n.kind == "assistant_brief"]
    assert len(brief) == 1
    assert brief[0].link == f"/accounts/{hospital['id']}/brief"
    body = brief[0].body_zh or ""
    assert "华山医院" in body
    assert "超声采购" in body
    assert "询价：超声" in body
    assert "机密扩容项目" not in body
    assert "7654321" not in body
    assert "七折" not in body
    # the same account's brief for someone who may see all of it does hold them (the test is not vacuous)
    full = str(admin.request("GET", f"/assistant/briefs/accounts/{hospital['id']}").json())
    assert "机密扩容项目" in full
    assert "七折" in full
    opened = rep.request("GET", "/tasks", params={"owner_id": str(tenant["rep"].user_id)}).json()["items"]
    task = next(t for t in opened if t["link"] == f"/accounts/{hospital['id']}/brief")
    assert "机密扩容项目" not in (task["description"] or "")
    assert inquiry["id"]

    # disabled, it no longer runs
    assert (
        admin.request("PATCH", f"/assistant/workflows/{workflow['id']}", json={"enabled": False}).json()["enabled"]
        is False
    )
    runs = page.get("/assistant/workflows").text
    assert "delivered" in runs
    assert "已停用" in runs


def test_a_lead_brief_reaches_its_rep_once_assigned_without_what_the_rep_may_not_see(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "_event_hooks", [])
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks, "enqueue_assistant_workflow", lambda *args: queued.append(args))
    engine.on_event(tasks.queue_assistant_workflows)
    admin, rep, manager = Api(client, tenant["admin"]), Api(client, tenant["rep"]), Api(client, tenant["manager"])
    lead_brief = {"compose": "lead_brief", "passages": 0, "deliver": ["notification", "task"]}
    for event in ("lead.created", "lead.assigned"):
        made = admin.request(
            "POST", "/assistant/workflows", json={"name": event, "event_type": event, "definition": lead_brief}
        )
        assert made.status_code == 201, made.text
    mismatch = {"name": "z", "event_type": "lead.created", "definition": {"compose": "account_brief"}}
    assert_problem(admin.request("POST", "/assistant/workflows", json=mismatch), 422)
    # the rep may not read a lead's mobile in this organization
    with db.unit_of_work(None, system=True) as session:
        session.add(
            FieldSecurityRule(
                organization_id=tenant.organization_id,
                record_type="lead",
                field="mobile",
                role="rep",
                can_read=False,
                can_edit=False,
            )
        )
    # a similar account the rep owns and won; another rep's one, which the rep may not see
    mine = rep.create("accounts", {"name": "瑞金医院"})
    won = rep.create("opportunities", {"name": "监护仪", "account_id": mine["id"], "amount": "90000.00"})
    assert rep.request("POST", f"/opportunities/{won['id']}/stage", json={"stage": "won"}).status_code == 200
    admin.create("accounts", {"name": "瑞金医院有限公司", "city": "机密城", "owner_id": tenant["rep2"].user_id})

    lead = manager.create(
        "leads",
        {
            "name": "王医生",
            "company": "瑞金医院",
            "source": "tender",
            "mobile": "13912345678",
            "notes": "想了解监护仪报价",
        },
    )
    assert lead["owner_id"] is None
    engine.drain(db)
    assert [tasks.run_assistant_workflow(*args) for args in queued] == ["skipped"]  # unassigned: nobody to brief
    with db.reading(None, system=True) as session:
        assert not list(session.scalars(select(Notification).where(Notification.kind == "assistant_brief")))

    queued.clear()
    assigned = manager.request("POST", f"/leads/{lead['id']}/assign", json={"owner_id": tenant["rep"].user_id})
    assert assigned.status_code == 200, assigned.text
    engine.drain(db)
    assert [tasks.run_assistant_workflow(*args) for args in queued] == ["delivered"]
    with db.reading(None, system=True) as session:
        notes = list(session.scalars(select(Notification).where(Notification.kind == "assistant_brief")))
    assert [n.user_id for n in notes] == [tenant["rep"].user_id]
    assert notes[0].link == f"/leads/{lead['id']}"
    body = notes[0].body_zh or ""
    assert "瑞金医院" in body
    assert "来源 招标" in body
    assert "想了解监护仪报价" in body  # what the lead said
    assert "全国第一" not in body  # ... through the compliance checker
    assert "已有赢单" in body  # the similar account the rep won
    assert "下一步" in body
    assert "13912345678" not in body  # masked for reps
    assert "机密城" not in body  # another rep's account stays out
    task = next(t for t in rep.request("GET", "/tasks").json()["items"] if t["link"] == f"/leads/{lead['id']}")
    assert "13912345678" not in (task["description"] or "")
    # the same brief for a manager, who may read the mobile, does hold it (the test is not vacuous)
    with db.reading(tenant["manager"].actor) as session:
        seen = briefs.lead_brief(session, tenant["manager"].actor, lead["id"], passages=0)
    unmasked = " ".join(s.text for statements in seen.sections.values() for s in statements)
    assert "13912345678" in unmasked
    said = seen.sections["said"][0]
    assert said.text.startswith("线索留言：想了解监护仪报价")
    assert "全国第一" not in said.text  # cut by the compliance checker for everyone
