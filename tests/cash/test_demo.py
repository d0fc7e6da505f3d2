"""The demo seller's lead to cash and targets: won deals with contracts, plans and collections,
one overdue instalment that the daily run alerts on, one collection awaiting approval, targets."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from closeloop.cash import service as cash
from closeloop.cash.daily import run_daily
from closeloop.cash.models import Collection, Instalment
from closeloop.core.clock import frozen_at
from closeloop.crm import records
from closeloop.crm.contracts.service import CONTRACTS
from closeloop.db.scope import tenant_clause, within_organization
from closeloop.demo.seed import DemoResult
from closeloop.demo.world import ANCHOR
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.targets.models import Target
from tests.conftest import Backend
from tests.demo.conftest import demo

__all__ = ["demo"]


def test_the_demo_has_plans_collections_an_overdue_instalment_and_targets(backend: Backend, demo: DemoResult) -> None:
    org = demo.organization_id
    with backend.database.reading(None, system=True) as session:
        instalments = session.scalar(select(func.count()).select_from(within_organization(org, Instalment).subquery()))
        rows = session.execute(
            select(Collection.status, func.count()).where(tenant_clause(org, Collection)).group_by(Collection.status)
        ).all()
        statuses = {str(status): int(count) for status, count in rows}
        targets = session.scalar(select(func.count()).select_from(within_organization(org, Target).subquery()))
    assert instalments == 36
    assert statuses["submitted"] == 1
    assert statuses["approved"] > 10
    assert (targets or 0) > 10
    with frozen_at(ANCHOR + timedelta(hours=1)):
        cfo = org_service.system_actor(org)
        with backend.database.reading(cfo) as session:
            late = cash.overdue(session, cfo)
        assert len(late) == 1
        with backend.database.unit_of_work(None, system=True) as session:
            assert run_daily(session, org).alerted == 1


def test_demo_rep_finds_their_contracts_plans_an_invoice_and_the_overdue_instalment(
    backend: Backend, demo: DemoResult
) -> None:
    with frozen_at(ANCHOR + timedelta(hours=1)), backend.database.reading(None, system=True) as session:
        user = session.scalar(
            select(User).where(tenant_clause(demo.organization_id, User), User.username == "demo.rep")
        )
        assert user is not None
        rep = org_service.actor_for(session, user)
        contracts = records.read_page(session, rep, CONTRACTS, {"limit": "50"}).items
        assert len(contracts) >= 3
        assert {c["owner_id"] for c in contracts} == {user.id}
        approved = [c for c in cash.list_collections(session, rep) if c.status == "approved"]
        assert approved
        invoices = [i for c in contracts for i in cash.list_invoices(session, rep, contract_id=c["id"])]
        assert len(invoices) == 1
        late = cash.overdue(session, rep)
        assert len(late) == 1
        assert late[0].contract.owner_id == user.id
