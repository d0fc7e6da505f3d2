"""Assigning to a team: in turn (round robin) or to the least loaded member, among the rule owner's
reports or a department (with its sub-departments); unknown teams are refused with a
message that says why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.core.clock import utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm.leads.models import Lead
from closeloop.crm.leads.schemas import LeadCreate
from closeloop.crm.leads.service import create_lead
from closeloop.db.session import Database
from closeloop.org.models import Department, User
from tests.factories import Tenant


def _assign_rule(db: Database, tenant: Tenant, target: str, strategy: str) -> None:
    manager = tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [],
        "actions": [{"type": "assign", "target": target, "params": {"strategy": strategy}}],
    }
    with db.unit_of_work(manager) as session:
        automation.create_rule(session, manager, name="分配", definition=definition, enabled=True, undo_seconds=0)


def _new_leads(db: Database, tenant: Tenant, names: list[str]) -> list[int]:
    ids = []
    for name in names:  # one at a time, as they arrive
        admin = tenant["admin"].actor
        with db.unit_of_work(admin) as session:
            ids.append(create_lead(session, admin, data=LeadCreate(name=name)).id)
        engine.drain(db)
        engine.run_due_actions(db, now=utcnow() + timedelta(seconds=1))
    return ids


def _owners(db: Database, ids: list[int]) -> list[int | None]:
    with db.reading(None, system=True) as session:
        owners = dict(session.execute(select(Lead.id, Lead.owner_id).where(Lead.id.in_(ids))).all())
    return [owners[i] for i in ids]


def test_round_robin_among_the_rule_owners_reports(db: Database, tenant: Tenant) -> None:
    _assign_rule(db, tenant, "team:reports", "round_robin")
    ids = _new_leads(db, tenant, ["甲", "乙", "丙"])
    rep, rep2 = tenant["rep"].user_id, tenant["rep2"].user_id
    assert _owners(db, ids) == [rep, rep2, rep]


def test_least_loaded_in_a_department_and_its_sub_departments(db: Database, tenant: Tenant) -> None:
    with db.unit_of_work(None, system=True) as session:
        parent = Department(organization_id=tenant.organization_id, name="华东销售部")
        session.add(parent)
        session.flush()
        team = Department(organization_id=tenant.organization_id, name="华东销售1组", parent_id=parent.id)
        session.add(team)
        session.flush()
        members = [tenant["rep"].user_id, tenant["rep2"].user_id]
        session.execute(update(User).where(User.id.in_(members)).values(department_id=team.id))
    rep = tenant["rep"].actor
    with db.unit_of_work(rep) as session:  # rep already works two open leads
        for name in ("旧1", "旧2"):
            create_lead(session, rep, data=LeadCreate(name=name, owner_id=rep.user_id))
    engine.drain(db)
    _assign_rule(db, tenant, "team:华东销售部", "least_loaded")
    ids = _new_leads(db, tenant, ["甲", "乙", "丙"])
    rep2 = tenant["rep2"].user_id
    # rep2 has none, then one (tie broken by load, then id: rep has 2), then rep2 has 2 = rep's 2 → rep
    assert _owners(db, ids) == [rep2, rep2, rep.user_id]


def test_unknown_teams_are_refused_saying_why(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    unknown_team = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [],
        "actions": [{"type": "assign", "target": "team:inside_sales", "params": {}}],
    }
    with db.unit_of_work(manager) as session, pytest.raises(ValidationFailed) as refused:
        automation.create_rule(session, manager, name="x", definition=unknown_team)
    assert refused.value.problems[0].field == "actions.0.target"
    assert "team:reports" in refused.value.problems[0].message
