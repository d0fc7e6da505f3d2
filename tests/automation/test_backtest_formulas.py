"""Backtests evaluate formula fields on the record as it was (issue #7 GOV-2 with AUTO-4): a formula
whose inputs changed since the event reads the inputs of then, TODAY() is the event's day, and an
aggregate counts only the related rows that existed at that moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from closeloop.automation import service as automation
from closeloop.core.clock import frozen_at
from closeloop.crm import customfields, records
from closeloop.crm.customfields import DefinitionCreate
from closeloop.crm.orders.models import Order
from closeloop.db.scope import RowAccess
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.factories import Tenant

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _formula(db: Database, tenant: Tenant, name: str, formula: str, **extra: Any) -> None:
    system = org_service.system_actor(tenant.organization_id)
    body = {"record_type": "account", "name": name, "label_zh": name, "label_en": name, **extra}
    with db.unit_of_work(system) as session:
        customfields.create_definition(
            session, system, DefinitionCreate.model_validate({"field_type": "formula", "formula": formula, **body})
        )


def _rule(field: str, value: float) -> dict[str, Any]:
    return {
        "trigger": {"kind": "event", "event": "account.updated"},
        "conditions": [{"field_or_metric": f"account.custom.{field}", "op": ">=", "value": value}],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }


def _rename(db: Database, tenant: Tenant, account_id: int, changes: dict[str, Any]) -> None:
    manager, accounts = tenant["manager"].actor, records.record_type_for("account")
    with db.unit_of_work(manager) as session:
        records.update(
            session,
            manager,
            accounts,
            records.get(session, manager, accounts, account_id, access=RowAccess.WRITE),
            changes,
        )


def test_a_formula_reads_its_inputs_as_they_were_at_the_event(db: Database, tenant: Tenant) -> None:
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        customfields.create_definition(
            session,
            system,
            DefinitionCreate.model_validate(
                {
                    "record_type": "account",
                    "name": "potential",
                    "field_type": "money",
                    "label_zh": "潜力",
                    "label_en": "Potential",
                }
            ),
        )
    _formula(db, tenant, "value_index", "custom.potential / 1000 + employees")
    manager, accounts = tenant["manager"].actor, records.record_type_for("account")
    with frozen_at(START) as advance:
        with db.unit_of_work(manager) as session:
            account_id = records.create(
                session, manager, accounts, {"name": "华东医院", "employees": 600, "custom": {"potential": 500000}}
            ).id
        advance(timedelta(days=2))
        _rename(db, tenant, account_id, {"name": "华东医院集团"})  # then: 500 + 600 = 1,100 → fires
        advance(timedelta(days=2))
        _rename(db, tenant, account_id, {"employees": 10, "custom": {"potential": 100000}})  # 100 + 10 → not
        advance(timedelta(days=1))
        with db.reading(manager) as session:
            result = automation.backtest(session, manager, _rule("value_index", 1000), days=10)
            today = records.get(session, manager, accounts, account_id, access=RowAccess.WRITE)
    assert (today.employees, today.custom["potential"]) == (10, 100000)  # today's value would be 110
    assert (result.checked, result.fired) == (2, 1)
    [decision] = result.decisions
    assert decision["at"] == (START + timedelta(days=2)).isoformat()
    assert decision["conditions"][0]["seen"] == 1100


def test_an_aggregate_counts_the_related_rows_of_then_and_today_is_the_events_day(db: Database, tenant: Tenant) -> None:
    _formula(db, tenant, "ordered", "SUM(orders.amount WHERE days_ago <= 3)")
    manager, accounts = tenant["manager"].actor, records.record_type_for("account")
    rep = tenant["rep"].user_id

    def order(account_id: int, total: int, at: datetime) -> None:
        with db.unit_of_work(None, system=True) as session:
            session.add(Order(organization_id=tenant.organization_id, account_id=account_id, owner_id=rep,
                              number=f"SO-{total}", total=Decimal(total), ordered_at=at))  # fmt: skip

    with frozen_at(START) as advance:
        with db.unit_of_work(manager) as session:
            account_id = records.create(session, manager, accounts, {"name": "华山医院"}).id
        order(account_id, 800, START)
        advance(timedelta(days=1))
        _rename(db, tenant, account_id, {"name": "华山医院一部"})  # then: 800 → not
        advance(timedelta(days=1))
        order(account_id, 5000, START + timedelta(days=2))
        advance(timedelta(days=1))
        _rename(db, tenant, account_id, {"name": "华山医院二部"})  # then: 5,800 → fires
        advance(timedelta(days=5))  # today both orders are older than 3 days: 0 for every event
        _rename(db, tenant, account_id, {"name": "华山医院三部"})
        with db.reading(manager) as session:
            result = automation.backtest(session, manager, _rule("ordered", 1000), days=10)
    assert (result.checked, result.fired) == (3, 1)
    [decision] = result.decisions
    assert decision["at"] == (START + timedelta(days=3)).isoformat()
    assert decision["conditions"][0]["seen"] == 5800
