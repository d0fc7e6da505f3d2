"""Tenth session: trying a rule answers quickly and reads well (试运行, names with links, durations
in days, full-width punctuation, counts per record); a task a rule gives to nobody goes to the rule's
author and the decision says so; the undo window and the decision log name the rule and the record,
show local times, a failure's error and event types in words; nobody sees decisions or pending
actions about records they cannot read."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.automation import engine, explain
from closeloop.automation import service as automation
from closeloop.automation.models import PendingAction
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.leads.models import Lead
from closeloop.crm.leads.schemas import LeadCreate
from closeloop.crm.leads.service import create_lead
from closeloop.crm.tasks.models import Task
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.web.test_no_english_in_chinese_pages import english_words
from tests.web.test_settings_pages import browser, csrf_of

PLACEHOLDER = "当客户连续3次未回复邮件且最近一次沟通超过14天，提醒主管"

SILENT = {
    "trigger": {"kind": "schedule", "frequency": "daily", "time": None, "inferred": True},
    "conditions": [
        {"field_or_metric": "email_unreplied", "op": "streak", "value": 3, "unit": "count"},
        {"field_or_metric": "time_since_last_contact", "op": ">", "value": 14, "unit": "day"},
    ],
    "actions": [{"type": "notify", "target": "manager", "params": {}}],
}


def _account(session: Session, tenant: Tenant, name: str, pattern: str, now: datetime) -> int:
    """An account with one activity per letter of ``pattern``, every 4 days up to 20 days ago:
    ``o`` an unanswered email, ``r`` an answered one, ``i`` an inbound email, ``c`` a call, ``v`` a visit."""
    account = Account(organization_id=tenant.organization_id, name=name, owner_id=tenant["rep"].user_id, custom={})
    account.created_at = now - timedelta(days=120)
    session.add(account)
    session.flush()
    kinds = {"o": ("email", "outbound", False), "r": ("email", "outbound", True), "i": ("email", "inbound", None),
             "c": ("call", "outbound", False), "v": ("visit", "outbound", None)}  # fmt: skip
    for index, letter in enumerate(pattern):
        kind, direction, replied = kinds[letter]
        session.add(
            Activity(
                organization_id=tenant.organization_id, kind=kind, direction=direction, account_id=account.id,
                user_id=tenant["rep"].user_id, subject=f"{name} {index}", is_replied=replied, custom={},
                occurred_at=now - timedelta(days=20 + 4 * (len(pattern) - index)),
            )
        )  # fmt: skip
    session.flush()
    return account.id


@pytest.mark.parametrize(
    "conditions",
    [
        SILENT["conditions"],
        [{"field_or_metric": "call_unanswered", "op": ">=", "value": 1, "unit": "count"}],
        [{"field_or_metric": "time_since_last_visit", "op": ">", "value": 30, "unit": "day"}],
        [
            {
                "field_or_metric": "visit_count",
                "op": ">=",
                "value": 1,
                "unit": "count",
                "window": {"value": 60, "unit": "day"},
            }
        ],
    ],
)
def test_the_trial_reads_history_once_and_finds_what_the_queries_found(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, conditions: list[dict[str, object]]
) -> None:
    manager = tenant["manager"].actor
    now = utcnow()
    with db.unit_of_work(manager) as session:
        for number, pattern in enumerate(["ooo", "oro", "iooo", "oc", "vcoo", "ovvoo", "", "rrrr", "cccv"]):
            _account(session, tenant, f"医院{number}", pattern, now)
    definition = {**SILENT, "conditions": conditions}
    with db.reading(manager) as session:
        batched = automation.backtest(session, manager, definition, days=40, now=now)
    monkeypatch.setattr(automation, "_HISTORY_MEASURES", frozenset())  # each check queries, as before
    with db.reading(manager) as session:
        queried = automation.backtest(session, manager, definition, days=40, now=now)
    assert batched.fired > 0
    assert (batched.fired, batched.records, batched.per_record) == (queried.fired, queried.records, queried.per_record)
    assert [d["conditions"] for d in batched.decisions] == [d["conditions"] for d in queried.decisions]


def test_a_long_trial_covers_the_latest_days_and_says_so(
    db: Database, tenant: Tenant, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    with db.unit_of_work(tenant["manager"].actor) as session:
        silent = _account(session, tenant, "沉默医院", "ooo", now)
        _account(session, tenant, "活跃医院", "iii", now)
    monkeypatch.setattr(automation, "MAX_CHECKS", 20)  # two accounts a day: ten days
    manager = browser(client, db, tenant["manager"])
    token = csrf_of(manager.get("/automation/rules/new").text)
    tried = manager.post(
        "/automation/rules/try", data={"csrf": token, "text": PLACEHOLDER, "days": "60"}, headers={"HX-Request": "true"}
    )
    assert tried.status_code == 200
    assert 'data-covered="10"' in tried.text
    assert "只覆盖了所选 60 天中的最近 10 天" in tried.text
    assert 'data-backtest="10"' in tried.text
    assert 'data-records="1"' in tried.text
    # counted per record, named and linked; the reason reads as a trial run, in days, with Chinese punctuation
    row = re.search(r"<table data-per-record>.*?</table>", tried.text, re.S)
    assert row is not None
    assert f'<a href="/accounts/{silent}">沉默医院</a>' in row.group(0)
    assert '<td class="num">10</td>' in row.group(0)
    assert "试运行：因定时检查对客户「沉默医院」生效" in tried.text
    assert "（看到的值：3次）" in tried.text
    assert "规则「" not in tried.text
    assert not english_words(tried.text)
    assert "第0版" not in tried.text
    assert 'id="trying"' in tried.text or "正在用历史数据试运行规则" in manager.get("/automation/rules/new").text


def test_durations_and_events_read_as_words() -> None:
    assert explain.duration_text(11385.5, "hour", "zh") == "474天"
    assert explain.duration_text(11385.5, "hour", "en") == "474 days"
    assert explain.duration_text(232.42, "day", "zh") == "232天"
    assert explain.duration_text(3.25, "day", "zh") == "3.2天"
    assert explain.duration_text(1.5, "day", "en") == "36 hours"
    assert explain.duration_text(0.5, "hour", "zh") == "30分钟"
    assert explain.duration_text(3, "count", "zh") is None
    assert explain.duration_text(2, "month", "zh") is None
    assert explain.error_text("lead 12 not found", "zh") == "找不到线索 #12（已删除或无权访问）"
    assert explain.error_text("opportunity 3 not found", "en") == "opportunity #3 not found (deleted or out of reach)"
    assert explain.error_text("boom", "zh") == "boom"
    assert explain.error_text(None, "zh") is None
    assert explain.event_label("lead.created", "zh") == "新建线索"
    assert explain.event_label("account.updated", "zh") == "修改客户"
    assert explain.event_label("account.updated", "en") == "a change to account"
    zh, en = explain.why(
        rule_name="新线索", version=2, event_type="lead.created", record_type="lead", record_id=7,
        conditions=[], actions=[{"type": "create_task", "target": "owner", "params": {}}], record_name="无主测试",
    )  # fmt: skip
    assert zh == "规则「新线索」（第2版）因新建线索对线索「无主测试」生效：无附加条件。因此：给负责人创建任务。"
    assert "lead.created" not in zh
    assert "after a new lead" in en


NEW_LEAD_TASK = {
    "trigger": {"kind": "event", "event": "lead_created"},
    "conditions": [],
    "actions": [{"type": "create_task", "target": "owner", "params": {"title": "首次联系"}}],
}


def test_a_task_for_nobody_goes_to_the_rules_author_and_the_log_says_so(
    db: Database, tenant: Tenant, client: TestClient
) -> None:
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        rule_id = automation.create_rule(session, manager, name="新线索任务", definition=NEW_LEAD_TASK, enabled=True).id
    created = client.post(
        "/api/v1/leads", json={"name": "无主测试", "source": "website"}, headers=tenant["rep"].headers
    )
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    engine.drain(db)
    assert engine.run_due_actions(db, now=utcnow() + timedelta(minutes=5)) == 1
    with db.reading(None, system=True) as session:
        tasks = list(session.scalars(select(Task).where(Task.source == f"rule:{rule_id}")))
    assert [(t.subject_id, t.owner_id) for t in tasks] == [(lead_id, tenant["manager"].user_id)]
    description = tasks[0].description or ""
    assert "规则「新线索任务」" in description
    assert "Rule “" not in description
    page = browser(client, db, tenant["manager"]).get("/automation/decisions", params={"rule_id": str(rule_id)})
    assert "该记录没有负责人：任务已交给规则作者。" in page.text
    assert "因新建线索对线索「无主测试」生效" in page.text


def test_a_failed_action_shows_its_error_and_the_log_reads_in_local_time(
    db: Database, tenant: Tenant, client: TestClient
) -> None:
    manager, rep = tenant["manager"].actor, tenant["rep"].actor
    definition = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [],
        "actions": [{"type": "set_field", "target": "lead.status", "params": {"value": "working"}}],
    }
    with db.unit_of_work(manager) as session:
        rule_id = automation.create_rule(session, manager, name="设状态", definition=definition, enabled=True).id
    with db.unit_of_work(rep) as session:
        lead_id = create_lead(session, rep, data=LeadCreate(name="华山医院", owner_id=rep.user_id)).id
    engine.drain(db)
    with db.unit_of_work(None, system=True) as session:  # the lead is gone before the undo window ends
        lead = session.get(Lead, lead_id)
        assert lead is not None
        lead.deleted_at = utcnow()
    engine.run_due_actions(db, now=utcnow() + timedelta(minutes=5))
    with db.reading(None, system=True) as session:
        pending = session.scalar(select(PendingAction).where(PendingAction.rule_id == rule_id))
        assert pending is not None
        assert pending.status == "failed"
        error = str(pending.result["error"])
    page = browser(client, db, tenant["admin"])  # sees every record, the deleted lead's decision too
    log = page.get("/automation/decisions")
    assert "data-action-error" in log.text
    assert error == f"lead {lead_id} not found"
    assert f"找不到线索 #{lead_id}（已删除或无权访问）" in log.text
    assert f"线索 #{lead_id}" in log.text or f'<a href="/leads/{lead_id}">华山医院</a>' in log.text
    assert '<select name="record_type">' in log.text
    assert ">线索</option>" in log.text
    assert re.search(r"<td class=\"nowrap\">\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}</td>", log.text), "a local time"
    assert "T" not in re.findall(r'<td class="nowrap">([^<]*)</td>', log.text)[0]
    undo = page.get("/automation/pending")
    assert "设置字段" in undo.text
    assert "设状态" in undo.text
    waiting_part = undo.text.split("data-finished")[0]
    assert "not found" not in waiting_part
    assert "set_field" not in undo.text
    assert "设置字段线索的状态" in undo.text
    assert english_words(undo.text) <= {"Admin"}  # the signed-in test user's name
    assert english_words(log.text) <= {"Admin"}


def test_nobody_sees_actions_or_decisions_about_a_record_they_cannot_read(
    db: Database, tenant: Tenant, client: TestClient
) -> None:
    manager, vp = tenant["manager"].actor, tenant["sales_vp"].actor
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="经理的规则", definition=NEW_LEAD_TASK, enabled=True)
    with db.unit_of_work(vp) as session:
        hidden = create_lead(session, vp, data=LeadCreate(name="副总的线索", owner_id=vp.user_id)).id
    engine.drain(db)
    assert client.get(f"/api/v1/leads/{hidden}", headers=tenant["manager"].headers).status_code == 404
    listed = client.get("/api/v1/pending-actions", headers=tenant["manager"].headers).json()["items"]
    assert [p["record_id"] for p in listed if p["record_type"] == "lead"] == []
    decisions = client.get("/api/v1/decisions", headers=tenant["manager"].headers).json()["items"]
    assert [d["record_id"] for d in decisions] == []
    with db.reading(None, system=True) as session:
        pending = session.scalar(select(PendingAction).where(PendingAction.record_id == hidden))
        assert pending is not None
    refused = client.post(f"/api/v1/pending-actions/{pending.id}/cancel", headers=tenant["manager"].headers)
    assert refused.status_code == 404
    page = browser(client, db, tenant["manager"]).get("/automation/pending")
    assert "副总的线索" not in page.text
    assert f'data-pending="{pending.id}"' not in page.text
    # the owner still sees it
    own = client.get("/api/v1/pending-actions", headers=tenant["sales_vp"].headers).json()["items"]
    assert [p["record_id"] for p in own] == [hidden]
