"""Periodic checks run as of past hours (what ``closeloop demo`` uses for its decision history):
the real engine, hour by hour — decisions dated at the check's hour, deferred actions run when their
undo window ended, the latest still waiting — and only the organization asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.models import Decision, PendingAction, Rule
from closeloop.automation.replay import Replayed, replay_checks
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from tests.automation.test_engine import _account, _compiled
from tests.factories import Tenant

#: a daily check (08:00 in Shanghai, 00:00 UTC) that makes a task for the owner of a quiet account
QUIET_ACCOUNT = {
    "trigger": {"kind": "schedule", "frequency": "daily", "time": None, "inferred": True},
    "conditions": [{"field_or_metric": "time_since_last_contact", "op": ">", "value": 14, "unit": "day"}],
    "actions": [
        {"type": "create_task", "target": "owner", "params": {"title": "回访", "due_in": {"value": 3, "unit": "day"}}}
    ],
}
DAY_ONE = datetime(2026, 3, 2, tzinfo=UTC)


def _quiet_account_and_rule(db: Database, tenant: Tenant) -> tuple[int, int]:
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        rule = automation.create_rule(
            session, manager, name="安静客户", definition=QUIET_ACCOUNT, enabled=True, undo_seconds=86400
        )
        account = _account(session, tenant, "安静医院", emails=1, silent_days=20, now=DAY_ONE)
        return rule.id, account


def _decisions(db: Database, tenant: Tenant) -> list[Decision]:
    with db.reading(None, system=True) as session:
        statement = select(Decision).where(tenant_clause(tenant.organization_id, Decision)).order_by(Decision.id)
        return list(session.scalars(statement))


def _pending(db: Database, tenant: Tenant) -> list[PendingAction]:
    with db.reading(None, system=True) as session:
        where = tenant_clause(tenant.organization_id, PendingAction)
        return list(session.scalars(select(PendingAction).where(where).order_by(PendingAction.id)))


def test_checks_run_as_of_each_hour_and_undo_windows_end_in_order(
    db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    rule_id, account = _quiet_account_and_rule(db, tenant)
    # another organization's action, due before the replayed hours: not this replay's to run
    other_rule, _ = _quiet_account_and_rule(db, other_tenant)
    with db.unit_of_work(None, system=True) as session:
        found = session.get(Rule, other_rule)
        assert found is not None
        compiled = _compiled(session, found)
        assert (
            engine.run_scheduled_rule(session, other_tenant.organization_id, compiled, DAY_ONE - timedelta(days=3)) == 1
        )

    replayed = replay_checks(
        db, tenant.organization_id, since=DAY_ONE - timedelta(minutes=30), until=DAY_ONE + timedelta(days=2)
    )

    assert replayed == Replayed(hours=49, fired=3, ran=2)
    decisions = _decisions(db, tenant)
    assert [(d.rule_id, d.record_id, d.created_at) for d in decisions] == [
        (rule_id, account, DAY_ONE + timedelta(days=day)) for day in range(3)
    ]
    pending = _pending(db, tenant)
    assert [(p.status, p.run_after) for p in pending] == [
        ("done", DAY_ONE + timedelta(days=1)),
        ("done", DAY_ONE + timedelta(days=2)),
        ("pending", DAY_ONE + timedelta(days=3)),  # its undo window still open
    ]
    assert [p.status for p in _pending(db, other_tenant)] == ["pending"]
    # run again over the same hours: each period fires once, nothing more is done
    again = replay_checks(db, tenant.organization_id, since=DAY_ONE, until=DAY_ONE + timedelta(days=2))
    assert (again.fired, again.ran) == (0, 0)
