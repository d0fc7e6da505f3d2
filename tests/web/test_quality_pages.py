"""The data-quality pages: /quality, /tasks and /settings/assets — row scope, field masks, CSRF,
the scan on demand and its progress, marking a task done, editing the asset map."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.core.clock import frozen_at, utcnow
from closeloop.crm.contacts.models import Contact
from closeloop.crm.tasks.models import Task
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from closeloop.quality.service import run_scan
from closeloop.web import quality as quality_pages
from tests.factories import Tenant
from tests.legacy import write_legacy
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of


def _contact(db: Database, api: Api, name: str) -> int:
    """A contact with a mobile number that is no number (left by an older load; the forms and the
    API refuse one): a ``phone_invalid`` defect."""
    contact_id = int(api.create("contacts", {"name": name, "mobile": "13800138000", "title": "主任"})["id"])
    write_legacy(db, Contact, contact_id, mobile="12345678")
    return contact_id


def _tasks_of(db: Database, tenant: Tenant, contact_id: int) -> list[Task]:
    with db.reading(None, system=True) as session:
        return list(
            session.scalars(
                select(Task).where(
                    tenant_clause(tenant.organization_id, Task),
                    Task.subject_type == "contact",
                    Task.subject_id == contact_id,
                    Task.source == "quality:phone_invalid",
                )
            )
        )


@pytest.fixture
def scanned(client: TestClient, db: Database, tenant: Tenant) -> dict[str, int]:
    mine = _contact(db, Api(client, tenant["rep"]), "甄有效")
    theirs = _contact(db, Api(client, tenant["rep2"]), "贾号码")
    run_scan(db, tenant.organization_id, full=True)
    return {"mine": mine, "theirs": theirs}


def test_a_rep_sees_only_their_own_defects_and_tasks(
    client: TestClient, db: Database, tenant: Tenant, scanned: dict[str, int]
) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/quality")
    assert page.status_code == 200
    assert "Data quality" in page.text
    assert "Phone number is not valid" in page.text
    assert "甄有效" in page.text
    assert "贾号码" not in page.text
    # the total is the rep's own open defects, as the API counts them
    own = Api(client, tenant["rep"]).request("GET", "/quality/defects", params={"limit": 200}).json()["items"]
    assert {item["owner_id"] for item in own} == {tenant["rep"].user_id}
    assert f'data-total="{len(own)}"' in page.text
    assert "Scan now" not in page.text  # reps may not start scans
    # each defect links to the page where the record is fixed, never to raw API JSON
    contact_ids = {item["subject_id"] for item in own if item["subject_type"] == "contact"}
    assert contact_ids
    assert all(f'href="/contacts/{contact_id}"' in page.text for contact_id in contact_ids)
    assert 'href="/api/v1/' not in page.text

    tasks = rep.get("/tasks")
    assert tasks.status_code == 200
    assert "甄有效" in tasks.text
    assert "贾号码" not in tasks.text
    # a filter for someone else's records shows nothing of theirs either
    filtered = rep.get("/quality", params={"owner_id": tenant["rep2"].user_id})
    assert "贾号码" not in filtered.text

    manager = browser(client, db, tenant["manager"], locale="zh_CN")
    team = manager.get("/quality")
    assert "甄有效" in team.text
    assert "贾号码" in team.text
    assert "数据质量" in team.text
    assert "立即扫描" in team.text


def test_marking_a_task_done_needs_the_form_token_is_audited_and_only_for_own_tasks(
    client: TestClient, db: Database, tenant: Tenant, scanned: dict[str, int]
) -> None:
    [mine] = _tasks_of(db, tenant, scanned["mine"])
    [theirs] = _tasks_of(db, tenant, scanned["theirs"])
    rep = browser(client, db, tenant["rep"], locale="en")
    token = csrf_of(rep.get("/tasks").text)

    refused = rep.post(f"/tasks/{mine.id}/done", data={"csrf": "forged"})
    assert refused.status_code == 400
    assert _tasks_of(db, tenant, scanned["mine"])[0].status == "open"
    foreign = rep.post(f"/tasks/{theirs.id}/done", data={"csrf": token})
    assert foreign.status_code == 404
    assert _tasks_of(db, tenant, scanned["theirs"])[0].status == "open"

    done = rep.post(f"/tasks/{mine.id}/done", data={"csrf": token}, headers={"HX-Request": "true"})
    assert done.status_code == 200
    assert 'data-count="done">1<' in done.text
    [task] = _tasks_of(db, tenant, scanned["mine"])
    assert (task.status, task.closed_by_id) == ("done", tenant["rep"].user_id)
    with db.reading(None, system=True) as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(
                    tenant_clause(tenant.organization_id, AuditEntry),
                    AuditEntry.subject_type == "task",
                    AuditEntry.subject_id == mine.id,
                )
                .order_by(AuditEntry.seq)
            )
        )
    assert actions == ["task.created", "task.updated"]
    assert "甄有效" in rep.get("/tasks", params={"status": "done"}).text


def test_scan_now_queues_a_scan_whose_progress_the_page_polls(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(quality_pages, "enqueue_scan", lambda org, scan: queued.append((org, scan)))
    rep = browser(client, db, tenant["rep"], locale="en")
    assert rep.post("/quality/scans", data={"csrf": csrf_of(rep.get("/quality").text)}).status_code == 403
    assert queued == []

    manager = browser(client, db, tenant["manager"], locale="en")
    token = csrf_of(manager.get("/quality").text)
    assert manager.post("/quality/scans", data={"csrf": "forged"}).status_code == 400
    started = manager.post("/quality/scans", data={"csrf": token}, headers={"HX-Request": "true"})
    assert started.status_code == 200
    [(organization_id, scan_id)] = queued
    assert 'data-status="queued"' in started.text
    assert 'hx-trigger="every 1s"' in started.text

    run_scan(db, organization_id, scan_id=scan_id)
    finished = manager.get(f"/quality/scans/{scan_id}", headers={"HX-Request": "true"})
    assert 'data-status="done"' in finished.text
    assert "hx-trigger" not in finished.text
    assert "Scan finished" in finished.text
    assert manager.get("/quality/scans/999999999").status_code == 404


def test_freshness_table_leaves_out_masked_fields(client: TestClient, db: Database, tenant: Tenant) -> None:
    vp_api = Api(client, tenant["sales_vp"])
    with frozen_at(utcnow() - timedelta(days=70)) as advance:
        account = vp_api.create("accounts", {"name": "信用医院", "industry": "医院"})
        for week in range(8):
            assert vp_api.patch("accounts", account["id"], {"credit_line": f"{100 + week}.00"}).is_success
            advance(timedelta(days=7))
    vp = browser(client, db, tenant["sales_vp"], locale="en")
    page = vp.get("/quality")
    assert 'data-feed="account.credit_line"' in page.text
    rep = browser(client, db, tenant["rep"], locale="en")
    assert "credit_line" not in rep.get("/quality").text
    assert 'data-feed="account.name"' in rep.get("/quality").text


def test_the_asset_map_is_edited_inline_by_schema_managers_only(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/settings/assets")
    assert page.status_code == 200
    assert "Data asset map" in page.text
    assert "Export CSV" in page.text
    assert "?edit=" not in page.text
    refused = rep.post("/settings/assets/record_type/lead", data={"csrf": csrf_of(page.text), "responsible": ["rep"]})
    assert refused.status_code == 403

    admin = browser(client, db, tenant["admin"], locale="zh_CN")
    editing = admin.get("/settings/assets", params={"edit": "record_type/lead"})
    assert 'action="/settings/assets/record_type/lead"' in editing.text
    token = csrf_of(editing.text)
    wrong = admin.post("/settings/assets/record_type/lead", data={"csrf": token, "accountable_user_id": "999999999"})
    assert wrong.status_code == 422
    assert "accountable_user_id" in wrong.text
    saved = admin.post(
        "/settings/assets/record_type/lead",
        data={
            "csrf": token,
            "produced_by": ["rep", "manager"],
            "responsible": ["manager"],
            "accountable_user_id": str(tenant["director"].user_id),
            "notes": "线索由市场部导入",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    shown = admin.get("/settings/assets").text
    assert "线索由市场部导入" in shown
    row = Api(client, tenant["admin"]).request("GET", "/data-assets").json()["items"]
    lead = next(item for item in row if item["kind"] == "record_type" and item["key"] == "lead")
    assert lead["accountable_user_id"] == tenant["director"].user_id
    assert lead["responsible"] == ["manager"]
    assert admin.post("/settings/assets/record_type/lead", data={"csrf": "forged"}).status_code == 400


def test_more_than_a_hundred_tasks_are_paged(client: TestClient, db: Database, tenant: Tenant) -> None:
    from closeloop.crm.tasks import service as task_service
    from closeloop.org import service as org_service

    rep = tenant["rep"]
    system = org_service.system_actor(rep.actor.organization_id, label="test")
    with db.unit_of_work(system) as session:
        task_service.open_system_tasks(
            session,
            system,
            [
                task_service.NewTask(f"回访 {n:03d}", rep.user_id, "account", n + 1, "/accounts", "test")
                for n in range(105)
            ],
        )
    page = browser(client, db, rep, locale="en")
    first = page.get("/tasks")
    assert first.text.count('data-task="') == 100
    found = re.search(r'href="(/tasks\?status=open&amp;cursor=[^"]+)" rel="next"', first.text)
    assert found, "no link to the next page"
    second = page.get(found.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert second.text.count('data-task="') == 5
    assert 'rel="next"' not in second.text
    assert "First page" in second.text
