"""Backtests see each record as it was when the event happened, rebuilt from the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop.automation import service as automation
from closeloop.core.clock import frozen_at
from closeloop.crm import records
from closeloop.db.scope import RowAccess
from closeloop.db.session import Database
from tests.factories import Tenant

TIER_B = {
    "trigger": {"kind": "event", "event": "account.updated"},
    "conditions": [{"field_or_metric": "account.tier", "op": "==", "value": "B"}],
    "actions": [{"type": "notify", "target": "owner", "params": {}}],
}


def test_a_backtest_reads_the_field_as_it_was_then_not_as_it_is_now(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    accounts = records.record_type_for("account")
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with frozen_at(start) as advance:
        with db.unit_of_work(manager) as session:
            account = records.create(session, manager, accounts, {"name": "华东医院", "tier": "B"})
            account_id = account.id
        advance(timedelta(days=2))
        with db.unit_of_work(manager) as session:  # while it is tier B: the rule would fire
            records.update(
                session,
                manager,
                accounts,
                records.get(session, manager, accounts, account_id, access=RowAccess.WRITE),
                {"name": "华东医院集团"},
            )
        advance(timedelta(days=2))
        with db.unit_of_work(manager) as session:  # promoted to A: from now on it would not
            records.update(
                session,
                manager,
                accounts,
                records.get(session, manager, accounts, account_id, access=RowAccess.WRITE),
                {"tier": "A"},
            )
        advance(timedelta(days=1))
        with db.reading(manager) as session:
            result = automation.backtest(session, manager, TIER_B, days=10)
    assert result.checked == 2
    assert result.fired == 1
    [decision] = result.decisions
    assert decision["at"] == (start + timedelta(days=2)).isoformat()
    assert decision["conditions"][0]["seen"] == "B"


def test_an_opportunity_event_sees_its_account_as_it_was(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    accounts, opportunities = records.record_type_for("account"), records.record_type_for("opportunity")
    definition = {
        "trigger": {"kind": "event", "event": "opportunity.updated"},
        "conditions": [{"field_or_metric": "account.industry", "op": "==", "value": "医疗"}],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }
    with frozen_at(datetime(2026, 11, 2, 9, tzinfo=UTC)) as advance:
        with db.unit_of_work(manager) as session:
            account = records.create(session, manager, accounts, {"name": "华山医院", "industry": "医疗"})
            deal = records.create(
                session, manager, opportunities, {"name": "CT", "account_id": account.id, "amount": "100000"}
            )
            ids = account.id, deal.id
        advance(timedelta(days=1))
        with db.unit_of_work(manager) as session:
            records.update(
                session,
                manager,
                opportunities,
                records.get(session, manager, opportunities, ids[1], access=RowAccess.WRITE),
                {"name": "CT 二期"},
            )
        advance(timedelta(days=1))
        with db.unit_of_work(manager) as session:
            records.update(
                session,
                manager,
                accounts,
                records.get(session, manager, accounts, ids[0], access=RowAccess.WRITE),
                {"industry": "教育"},
            )
        with db.reading(manager) as session:
            result = automation.backtest(session, manager, definition, days=5)
    assert (result.checked, result.fired) == (1, 1)
    assert result.decisions[0]["conditions"][0]["seen"] == "医疗"
