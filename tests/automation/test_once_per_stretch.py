"""A rule on how long something has lasted — a lead waiting unassigned, a deal sitting in its stage,
a ticket open — fires once per stretch, not at every hourly check while it lasts; a new stretch (the
deal moves on and gets stuck again) fires again. The backtest counts the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.models import Decision
from closeloop.core.clock import frozen_at
from closeloop.crm import records
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.service import move_stage
from closeloop.db.session import Database
from tests.automation.test_scheduled_sets import _compiled
from tests.factories import Tenant

UNASSIGNED = {
    "trigger": {"kind": "schedule", "frequency": "hourly", "time": None, "inferred": True},
    "conditions": [{"field_or_metric": "lead.unassigned_duration", "op": ">=", "value": 24, "unit": "hour"}],
    "actions": [{"type": "notify", "target": "role:manager", "params": {}}],
}
STUCK = {
    "trigger": {"kind": "schedule", "frequency": "hourly", "time": None, "inferred": True},
    "conditions": [{"field_or_metric": "stage_duration", "op": ">", "value": 2, "unit": "day"}],
    "actions": [{"type": "notify", "target": "owner", "params": {}}],
}
START = datetime(2026, 11, 2, 1, tzinfo=UTC)


def _decisions(db: Database, rule_id: int) -> int:
    with db.reading(None, system=True) as session:
        return int(session.scalar(select(func.count(Decision.id)).where(Decision.rule_id == rule_id)) or 0)


def test_an_unassigned_lead_is_reported_once_not_every_hour(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    rule = _compiled(db, tenant, UNASSIGNED)
    with frozen_at(START) as advance:
        with db.unit_of_work(manager) as session:
            lead = records.create(
                session, manager, records.record_type_for("lead"), {"name": "王医生", "company": "华东医院"}
            )
            lead_id = lead.id
        fired = []
        advance(timedelta(hours=23))
        for hour in range(24, 54):  # hourly checks from hour 24 of the wait to hour 53
            advance(timedelta(hours=1))
            with db.unit_of_work(None, system=True) as session:
                fired.append(
                    engine.run_scheduled_rule(session, tenant.organization_id, rule, START + timedelta(hours=hour))
                )
        with db.reading(manager) as session:
            tried = automation.backtest(session, manager, UNASSIGNED, days=3)
    assert sum(fired) == 1
    assert _decisions(db, rule.rule_id) == 1
    assert (tried.fired, tried.records) == (1, [("lead", lead_id)])


def test_a_deal_stuck_again_after_moving_on_fires_again(db: Database, tenant: Tenant) -> None:
    rep = tenant["rep"].actor
    opportunities = records.record_type_for("opportunity")
    rule = _compiled(db, tenant, STUCK)
    with frozen_at(START) as advance:
        with db.unit_of_work(rep) as session:
            deal = records.create(session, rep, opportunities, {"name": "CT 采购", "stage": "qualification"})
            deal_id = deal.id

        def check() -> int:
            with db.unit_of_work(None, system=True) as session:
                return engine.run_scheduled_rule(session, tenant.organization_id, rule, START + elapsed[0])

        elapsed = [timedelta(days=3)]
        advance(elapsed[0])
        first = [check()]
        for _ in range(5):
            advance(timedelta(hours=1))
            elapsed[0] += timedelta(hours=1)
            first.append(check())
        with db.unit_of_work(rep) as session:  # it moves on, then sits in the next stage
            move_stage(session, rep, opportunity_id=deal_id, stage=Stage.PROPOSAL)
        advance(timedelta(days=3))
        elapsed[0] += timedelta(days=3)
        second = check()
    assert first == [1, 0, 0, 0, 0, 0]
    assert second == 1
    assert _decisions(db, rule.rule_id) == 2
