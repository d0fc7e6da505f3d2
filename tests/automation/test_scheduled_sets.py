"""Scheduled rules select their matching records with one query (conditions compiled to SQL where
SQL can express them), then check only those exactly; the result is the one a loop over every
record gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from closeloop.automation import compile, engine
from closeloop.automation import service as automation
from closeloop.automation.models import Decision, Rule, RuleVersion
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import Tier
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from tests.automation.test_engine import SILENT_CUSTOMER, _account
from tests.factories import Tenant

NOW = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, the rules' hour
STUCK_DEALS = {
    "trigger": {"kind": "schedule", "frequency": "daily"},
    "conditions": [
        {"field_or_metric": "opportunity.amount", "op": ">", "value": 500000, "unit": "CNY"},
        {"field_or_metric": "stage_duration", "op": ">", "value": 21, "unit": "day"},
        {"field_or_metric": "account.tier", "op": "==", "value": "a"},
        {"field_or_metric": "account.custom.channel", "op": "==", "value": "直销"},
    ],
    "actions": [{"type": "notify", "target": "role:regional_director", "params": {}}],
}


def _compiled(db: Database, tenant: Tenant, definition: dict[str, Any]) -> engine.CompiledRule:
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        rule = automation.create_rule(session, manager, name="定时", definition=definition, enabled=True)
        version = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule.id))
        assert version is not None
        return engine.compile_rule(session.get_one(Rule, rule.id), version)


def _deal(session: Any, tenant: Tenant, account_id: int, amount: int, stuck_days: int) -> int:
    deal = Opportunity(
        organization_id=tenant.organization_id, name=f"deal {amount} {stuck_days}", account_id=account_id,
        owner_id=tenant["rep"].user_id, amount=amount, stage="negotiation", custom={},
        stage_changed_at=NOW - timedelta(days=stuck_days),
    )  # fmt: skip
    deal.created_at = NOW - timedelta(days=60)
    session.add(deal)
    session.flush()
    return deal.id


def test_the_query_matches_what_a_loop_over_every_record_finds(db: Database, tenant: Tenant) -> None:
    silent_rule = _compiled(db, tenant, SILENT_CUSTOMER)
    stuck_rule = _compiled(db, tenant, STUCK_DEALS)
    with db.unit_of_work(None, system=True) as session:
        silent = _account(session, tenant, "沉默医院", emails=3, silent_days=15, now=NOW)
        _account(session, tenant, "两封邮件", emails=2, silent_days=15, now=NOW)
        _account(session, tenant, "最近联系", emails=3, silent_days=13, now=NOW)
        for index in range(20):
            _account(session, tenant, f"安静 {index}", emails=0, silent_days=0, now=NOW)
        tier_a = session.get_one(Account, silent)
        tier_a.tier, tier_a.custom = Tier.A, {"channel": "直销"}
        stuck = _deal(session, tenant, silent, 800000, 30)
        _deal(session, tenant, silent, 800000, 10)  # not stuck long enough
        _deal(session, tenant, silent, 100000, 30)  # too small
    queries: list[str] = []
    bind = db.write_engine

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    event.listen(bind, "before_cursor_execute", count)
    try:
        with db.unit_of_work(None, system=True) as session:
            fired = engine.run_scheduled_rule(session, tenant.organization_id, silent_rule, NOW)
            selecting = len(queries)
            again = engine.run_scheduled_rule(session, tenant.organization_id, silent_rule, NOW)
            stuck_fired = engine.run_scheduled_rule(session, tenant.organization_id, stuck_rule, NOW)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert (fired, again, stuck_fired) == (1, 0, 1)
    # 23 accounts, and far fewer statements: the selecting query, then the one match's exact check and firing
    assert selecting < 20
    with db.reading(None, system=True) as session:
        records = set(session.execute(select(Decision.rule_id, Decision.record_id)).all())
    assert records == {(silent_rule.rule_id, silent), (stuck_rule.rule_id, stuck)}
    # the loop over every record, on a fresh period, finds the same records — except the stuck deal,
    # whose stretch in its stage was reported already (once per stretch, on both paths)
    later = NOW + timedelta(days=1)
    with db.unit_of_work(None, system=True) as session:
        assert engine.run_scheduled_rule_by_loop(session, tenant.organization_id, silent_rule, later) == 1
        assert engine.run_scheduled_rule_by_loop(session, tenant.organization_id, stuck_rule, later) == 0
        assert engine.run_scheduled_rule(session, tenant.organization_id, stuck_rule, later + timedelta(days=1)) == 0


def test_which_conditions_compile_and_which_are_left_to_python() -> None:
    conditions = STUCK_DEALS["conditions"]
    assert isinstance(conditions, list)
    plan = compile.plan(1, "opportunity", conditions, NOW)
    assert (plan.compiled, plan.left_to_python) == ((0, 1, 2), (3,))
    silent = SILENT_CUSTOMER["conditions"]
    assert isinstance(silent, list)
    assert compile.plan(1, "account", silent, NOW).left_to_python == ()
