"""A rule that sets a deal's stage moves it the way a person does: the stage history, the time in
the stage and the closing fields are written, and a lost deal carries the rule's reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.core.clock import utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities import service as opportunities
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.db.session import Database
from tests.factories import Tenant


def _rule(db: Database, tenant: Tenant, to_stage: str, params: dict[str, object]) -> None:
    manager = tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": "opportunity_stage_changed", "to_stage": to_stage},
        "conditions": [],
        "actions": [{"type": "set_field", "target": "opportunity.stage", "params": params}],
    }
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="阶段", definition=definition, enabled=True, undo_seconds=0)


def _move(db: Database, tenant: Tenant, stage: Stage) -> int:
    rep = tenant["rep"].actor
    with db.unit_of_work(rep) as session:
        deal = opportunities.create_opportunity(
            session, rep, data=OpportunityCreate(name="华东医院采购", amount=100000)
        )
        opportunities.move_stage(session, rep, opportunity_id=deal.id, stage=stage)
        deal_id = deal.id
    engine.drain(db)
    engine.run_due_actions(db, now=utcnow() + timedelta(seconds=1))
    return deal_id


def test_a_rule_setting_the_stage_writes_the_stage_history(db: Database, tenant: Tenant) -> None:
    _rule(db, tenant, "proposal", {"value": "negotiation"})
    deal_id = _move(db, tenant, Stage.PROPOSAL)
    rep = tenant["rep"].actor
    with db.reading(rep) as session:
        deal = opportunities.get_opportunity(session, rep, opportunity_id=deal_id)
        history = opportunities.stage_history(session, rep, opportunity_id=deal_id)
        assert deal.stage == Stage.NEGOTIATION
        assert [(h.from_stage, h.to_stage) for h in history] == [
            (None, Stage.PROSPECTING),
            (Stage.PROSPECTING, Stage.PROPOSAL),
            (Stage.PROPOSAL, Stage.NEGOTIATION),
        ]
        assert deal.stage_changed_at == history[-1].changed_at


def test_a_rule_closing_a_deal_as_lost_gives_its_reason_and_close_date(db: Database, tenant: Tenant) -> None:
    _rule(db, tenant, "negotiation", {"value": "lost", "lost_reason": "客户预算冻结"})
    deal_id = _move(db, tenant, Stage.NEGOTIATION)
    rep = tenant["rep"].actor
    with db.reading(rep) as session:
        deal = opportunities.get_opportunity(session, rep, opportunity_id=deal_id)
        assert (deal.stage, deal.lost_reason) == (Stage.LOST, "客户预算冻结")
        assert deal.closed_at is not None
        assert opportunities.stage_history(session, rep, opportunity_id=deal_id)[-1].to_stage == Stage.LOST


def test_setting_a_deal_lost_without_a_reason_is_refused_when_the_rule_is_saved(db: Database, tenant: Tenant) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _rule(db, tenant, "negotiation", {"value": "lost"})
    assert [p.field for p in refused.value.problems] == ["actions.0.params.lost_reason"]
