"""Playbooks (AUTO-3): a rule assigns the playbook that fits an opportunity (industry, size, cycle);
each step's task marked done opens the next."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from closeloop.automation import engine, playbooks
from closeloop.automation import service as automation
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.crm.opportunities.service import create_opportunity
from closeloop.crm.tasks.models import Task
from closeloop.crm.tasks.service import update_task
from closeloop.db.session import Database
from tests.factories import Tenant


def test_a_hospital_deal_gets_the_long_cycle_playbook_and_steps_follow_each_other(db: Database, tenant: Tenant) -> None:
    manager, rep = tenant["manager"].actor, tenant["rep"].actor
    with db.unit_of_work(manager) as session:
        playbooks.install_templates(session, manager)
        automation.create_rule(
            session, manager, name="playbooks", enabled=True, undo_seconds=0,
            definition={"trigger": {"kind": "event", "event": "opportunity.created"}, "conditions": [],
                        "actions": [{"type": "apply_playbook", "target": "auto", "params": {}}]},
        )  # fmt: skip
        hospital = Account(
            organization_id=tenant.organization_id, name="市一医院", industry="医院", size="large", custom={},
            owner_id=rep.user_id,
        )  # fmt: skip
        shop = Account(
            organization_id=tenant.organization_id,
            name="小店",
            industry="零售",
            size="small",
            custom={},
            owner_id=rep.user_id,
        )
        session.add_all([hospital, shop])
        session.flush()
        accounts = (hospital.id, shop.id)
    today = utcnow().date()
    with db.unit_of_work(rep) as session:
        long_close, short_close = today + timedelta(days=200), today + timedelta(days=20)
        long_deal = create_opportunity(
            session, rep, data=OpportunityCreate(name="CT 设备", account_id=accounts[0], expected_close_date=long_close)
        ).id
        short_deal = create_opportunity(
            session, rep, data=OpportunityCreate(name="SaaS", account_id=accounts[1], expected_close_date=short_close)
        ).id
    engine.drain(db)
    engine.run_due_actions(db, now=utcnow() + timedelta(seconds=1))

    def open_tasks(opportunity_id: int) -> list[Task]:
        with db.reading(None, system=True) as session:
            return list(
                session.scalars(
                    select(Task).where(
                        Task.subject_type == "opportunity", Task.subject_id == opportunity_id, Task.status == "open"
                    )
                )
            )

    [first] = open_tasks(long_deal)
    assert first.title == "拜访设备科与使用科室"
    assert first.owner_id == rep.user_id
    assert [t.title for t in open_tasks(short_deal)] == ["Open a trial account"]
    with db.unit_of_work(rep) as session:
        update_task(session, rep, task_id=first.id, data={"status": "done"})
    engine.drain(db)
    engine.drain(db)  # nothing left: the next step is opened once
    assert [t.title for t in open_tasks(long_deal)] == ["需求调研与论证材料"]
