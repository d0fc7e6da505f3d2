"""The rule engine at the level a manager sees it: the seeds' scenario end to end, the undo window,
the backtest, decisions on the record through the API; and the trigger index (unit)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.definition import record_type_of, trigger_of
from closeloop.automation.models import Decision, PendingAction, Rule, RuleVersion
from closeloop.config import settings
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.leads.schemas import LeadCreate
from closeloop.crm.leads.service import create_lead
from closeloop.crm.tasks.models import Task
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.events.service import Claimed
from closeloop.org.notifications import Notification
from tests.factories import Tenant

#: r001 of shared/data/rules/dev.jsonl, as the parser structures it
SILENT_CUSTOMER = {
    "trigger": {"kind": "schedule", "frequency": "daily", "time": None, "inferred": True},
    "conditions": [
        {"field_or_metric": "email_unreplied", "op": "streak", "value": 3, "unit": "count"},
        {"field_or_metric": "time_since_last_contact", "op": ">", "value": 14, "unit": "day"},
    ],
    "actions": [
        {"type": "notify", "target": "manager", "params": {"purpose": "intervene"}},
        {"type": "push_summary", "target": "manager", "params": {"scope": "communication_history"}},
    ],
}


def _account(session: Session, tenant: Tenant, name: str, emails: int, silent_days: int, now: datetime) -> int:
    account = Account(organization_id=tenant.organization_id, name=name, owner_id=tenant["rep"].user_id, custom={})
    account.created_at = now - timedelta(days=90)
    session.add(account)
    session.flush()
    for index in range(emails):
        session.add(
            Activity(
                organization_id=tenant.organization_id, kind="email", direction="outbound", account_id=account.id,
                user_id=tenant["rep"].user_id, subject=f"{name} quote #{index + 1}", is_replied=False, custom={},
                occurred_at=now - timedelta(days=silent_days + (emails - 1 - index) * 3),
            )
        )  # fmt: skip
    session.flush()
    return account.id


def _compiled(session: Session, rule: Rule) -> engine.CompiledRule:
    version = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule.id))
    assert version is not None
    return engine.compile_rule(rule, version)


def test_silent_customer_alerts_the_manager_with_history_and_explains_why(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    now = utcnow().astimezone(ZoneInfo(settings.business_timezone)).replace(hour=8, minute=30)  # the rule's local hour
    with db.unit_of_work(manager) as session:
        rule = automation.create_rule(session, manager, name="沉默客户", definition=SILENT_CUSTOMER, enabled=True)
        silent = _account(session, tenant, "沉默医院", emails=3, silent_days=15, now=now)
        two_emails = _account(session, tenant, "两封邮件", emails=2, silent_days=15, now=now)
        recent = _account(session, tenant, "最近联系", emails=3, silent_days=13, now=now)
        fired = engine.run_scheduled_rule(session, tenant.organization_id, _compiled(session, rule), now)
        # the same period does not fire twice
        again = engine.run_scheduled_rule(session, tenant.organization_id, _compiled(session, rule), now)
    assert (fired, again) == (1, 0)
    with db.reading(None, system=True) as session:
        decisions = list(session.scalars(select(Decision).where(tenant_clause(tenant.organization_id, Decision))))
        notices = list(
            session.scalars(
                select(Notification).where(
                    tenant_clause(tenant.organization_id, Notification),
                    Notification.user_id == tenant["manager"].user_id,
                )
            )
        )
    assert [(d.record_type, d.record_id) for d in decisions] == [("account", silent)]
    assert two_emails != recent  # neither fired
    seen = {c["field_or_metric"]: c["seen"] for c in decisions[0].conditions}
    assert seen["email_unreplied"] == 3
    assert 15 <= seen["time_since_last_contact"] < 15.1
    assert all(c["passed"] for c in decisions[0].conditions)
    assert "看到的值：3" in decisions[0].why_zh
    assert "value seen: 3" in decisions[0].why_en
    # the manager of the rep (the owner) is told, and gets the history summary
    assert {n.kind for n in notices} == {"automation.notice", "automation.summary"}
    summary = next(n for n in notices if n.kind == "automation.summary")
    assert "沉默医院 quote #3" in (summary.body_zh or "")
    assert "no reply" in (summary.body_en or "")


def test_backtest_replays_history_without_acting_and_the_record_shows_its_decisions(
    db: Database, tenant: Tenant, client: TestClient
) -> None:
    manager = tenant["manager"].actor
    now = utcnow()
    with db.unit_of_work(manager) as session:
        silent = _account(session, tenant, "沉默客户", emails=3, silent_days=20, now=now)
    with db.reading(manager) as session:
        result = automation.backtest(session, manager, SILENT_CUSTOMER, days=10)
    # silent for more than 14 days on each of the last days: fires once a day, on that account only
    assert result.records == [("account", silent)]
    assert 5 <= result.fired <= 11
    assert result.decisions[0]["conditions"][0]["seen"] == 3
    with db.reading(None, system=True) as session:
        assert session.scalar(select(func.count(Decision.id))) == 0  # nothing was done
    response = client.post(
        "/api/v1/rules/backtest", json={"definition": SILENT_CUSTOMER, "days": 3}, headers=tenant["manager"].headers
    )
    assert response.status_code == 200
    assert response.json()["records"] == [{"record_type": "account", "record_id": silent}]
    refused = client.post(
        "/api/v1/rules", json={"name": "x", "definition": {**SILENT_CUSTOMER, "actions": []}},
        headers=tenant["manager"].headers,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "actions"


def test_a_daily_rule_tried_over_30_days_fires_30_times(db: Database, tenant: Tenant, client: TestClient) -> None:
    """The window is the 30 days that end now (its start excluded): one check a day, 30 in all —
    what "over the last 30 days" says, not 31."""
    with db.unit_of_work(tenant["manager"].actor) as session:
        silent = _account(session, tenant, "久未联系", emails=3, silent_days=60, now=utcnow())

    for days in (30, 1, 7):
        response = client.post(
            "/api/v1/rules/backtest",
            json={"definition": SILENT_CUSTOMER, "days": days},
            headers=tenant["manager"].headers,
        )
        assert response.status_code == 200, response.text
        tried = response.json()
        assert tried["days"] == days
        assert tried["would_fire"] == days, (days, tried["per_record"])
        assert tried["per_record"][0]["record_id"] == silent
        assert tried["per_record"][0]["count"] == days


def test_undo_window_cancelled_does_nothing_expired_runs_once(db: Database, tenant: Tenant, client: TestClient) -> None:
    manager, rep = tenant["manager"].actor, tenant["rep"].actor
    definition = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [{"field_or_metric": "lead.source", "op": "==", "value": "website", "unit": None}],
        "actions": [
            {
                "type": "create_task",
                "target": "manager",
                "params": {"title": "跟进新线索", "due_in": {"value": 2, "unit": "day"}},
            }
        ],
    }  # fmt: skip
    with db.unit_of_work(manager) as session:
        rule = automation.create_rule(session, manager, name="新线索", definition=definition, enabled=True)
        rule_id = rule.id
    with db.unit_of_work(rep) as session:
        kept = create_lead(session, rep, data=LeadCreate(name="保留", source="website", owner_id=rep.user_id)).id
        dropped = create_lead(session, rep, data=LeadCreate(name="撤销", source="website", owner_id=rep.user_id)).id
        create_lead(session, rep, data=LeadCreate(name="展会", source="event", owner_id=rep.user_id))
    engine.drain(db)
    with db.reading(None, system=True) as session:
        pending = {
            p.record_id: p.id for p in session.scalars(select(PendingAction).where(PendingAction.rule_id == rule_id))
        }
    assert set(pending) == {kept, dropped}  # the lead from the event did not match
    assert engine.run_due_actions(db) == 0  # still inside the 30 s window
    response = client.post(f"/api/v1/pending-actions/{pending[dropped]}/cancel", headers=tenant["rep"].headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert (
        client.post(f"/api/v1/pending-actions/{pending[dropped]}/cancel", headers=tenant["rep"].headers).status_code
        == 409
    )
    later = utcnow() + timedelta(seconds=31)
    assert engine.run_due_actions(db, now=later) == 1
    assert engine.run_due_actions(db, now=later + timedelta(minutes=5)) == 0
    with db.reading(None, system=True) as session:
        tasks = list(session.scalars(select(Task).where(Task.source == f"rule:{rule_id}")))
    assert [(t.subject_id, t.owner_id, t.title) for t in tasks] == [(kept, tenant["manager"].user_id, "跟进新线索")]
    decisions = client.get(f"/api/v1/decisions?record_type=lead&record_id={dropped}", headers=tenant["rep"].headers)
    assert [a["status"] for a in decisions.json()["items"][0]["actions"]] == ["cancelled"]
    assert (
        client.get(f"/api/v1/decisions?record_type=lead&record_id={dropped}", headers=tenant["rep2"].headers).json()[
            "items"
        ]
        == []
    )
    review = client.post(
        f"/api/v1/decisions/{decisions.json()['items'][0]['id']}/review", json={"reason": "这条线索不该提醒"},
        headers=tenant["rep"].headers,
    )  # fmt: skip
    assert review.status_code == 201
    assert review.json()["reviewer_id"] == tenant["director"].user_id


def test_an_event_is_checked_only_against_the_rules_its_type_wakes() -> None:
    rules = []
    for number in range(1000):
        definition = {
            "trigger": {"kind": "event", "event": f"thing{number % 100}.changed"},
            "conditions": [{"field_or_metric": "account.tier", "op": "==", "value": "A", "unit": None}],
            "actions": [{"type": "notify", "target": "owner", "params": {}}],
        }
        rules.append(
            engine.CompiledRule(
                number, 1, f"r{number}", 1, 30, definition, trigger_of(definition), record_type_of(definition)
            )
        )
    index = engine.RuleIndex.build(rules)
    event = Claimed(1, 1, "thing7.changed", "thing7", 1, {}, "user", 1, utcnow(), 0)
    # the subject is no record the rules can read, so nothing touches the database
    checked = engine.process_event(cast(Session, None), event, index)
    assert checked == 10
    assert {rule.rule_id % 100 for rule in index.for_event("thing7.changed")} == {7}
    assert (
        engine.process_event(
            cast(Session, None), Claimed(2, 1, "other.event", "x", 1, {}, "user", 1, utcnow(), 0), index
        )
        == 0
    )
