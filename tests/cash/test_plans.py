"""Collection plans (CN-3): instalment statuses through a sequence of payments, only approved
collections counted, the plan capped by the contract amount, who decides a collection, and the
daily run's reminders and overdue alerts (raised once) — on a clock the test moves."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from closeloop.cash import service as cash
from closeloop.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.cash.conftest import World
from tests.factories import Tenant
from tests.samples import Api


def test_statuses_follow_payments_and_the_clock(world: World) -> None:
    contract = world.contract("100000.00")
    first = world.instalment(contract, "30000.00", date(2026, 3, 10))
    second = world.instalment(contract, "50000.00", date(2026, 4, 10))
    third = world.instalment(contract, "20000.00", date(2026, 5, 10))
    assert world.statuses(contract) == ["pending", "pending", "pending"]

    world.collect(first, "10000.00")
    assert world.statuses(contract) == ["partial", "pending", "pending"]
    world.collect(first, "20000.00")
    assert world.statuses(contract) == ["paid", "pending", "pending"]

    world.advance(timedelta(days=40))  # 2026-04-11: the second is past due, nothing collected
    assert world.statuses(contract) == ["paid", "overdue", "pending"]
    world.collect(second, "5000.00")
    assert world.statuses(contract) == ["paid", "overdue", "pending"]  # partly paid and late is overdue

    rep = world.actor("rep")
    with world.db.unit_of_work(rep) as session:
        cash.update_instalment(session, rep, instalment_id=third, changes={"is_void": True})
    assert world.statuses(contract) == ["paid", "overdue", "void"]
    assert world.amounts(contract) == cash.Amounts(
        signed=Decimal("100000.00"),
        planned=Decimal("80000.00"),
        collected=Decimal("35000.00"),
        submitted=Decimal("0.00"),
        outstanding=Decimal("65000.00"),
        overdue=Decimal("45000.00"),
    )


def test_unapproved_collections_do_not_count(world: World) -> None:
    contract = world.contract("10000.00")
    instalment = world.instalment(contract, "10000.00", date(2026, 3, 10))
    submitted = world.collect(instalment, "6000.00", approve=False)
    rejected = world.collect(instalment, "4000.00", approve=False)
    cfo = world.actor("cfo")
    with world.db.unit_of_work(cfo) as session:
        cash.reject_collection(session, cfo, rejected, note="到账金额不符")

    assert world.statuses(contract) == ["pending"]
    amounts = world.amounts(contract)
    assert (amounts.collected, amounts.submitted, amounts.outstanding) == (
        Decimal("0.00"),
        Decimal("6000.00"),
        Decimal("10000.00"),
    )
    assert world.collection(rejected).status == "rejected"
    # a decided collection is not decided again
    with world.db.unit_of_work(cfo) as session, pytest.raises(Conflict):
        cash.approve_collection(session, cfo, rejected)
    # the owner's manager approves; the other rep may not, nor the owner
    for key in ("rep2", "rep"):
        actor = world.actor(key)
        with world.db.unit_of_work(actor) as session, pytest.raises((Forbidden, NotFound)):
            cash.approve_collection(session, actor, submitted)
    manager = world.actor("manager")
    with world.db.unit_of_work(manager) as session:
        cash.approve_collection(session, manager, submitted)
    assert world.statuses(contract) == ["partial"]
    assert world.collection(submitted).decided_by_id == world.tenant["manager"].user_id


def test_the_plan_may_not_exceed_the_contract(world: World) -> None:
    contract = world.contract("100000.00")
    world.instalment(contract, "60000.00", date(2026, 4, 1))
    with pytest.raises(ValidationFailed) as refused:
        world.instalment(contract, "40000.01", date(2026, 5, 1))
    assert [(p.field, p.code) for p in refused.value.problems] == [("amount", "exceeds_contract")]
    assert "at most 40000.00 is left" in refused.value.problems[0].message
    world.instalment(contract, "40000.00", date(2026, 5, 1))


def test_a_collection_may_not_exceed_its_instalment(world: World) -> None:
    contract = world.contract("10000.00")
    instalment = world.instalment(contract, "10000.00", date(2026, 4, 1))
    world.collect(instalment, "8000.00", approve=False)
    with pytest.raises(ValidationFailed) as refused:
        world.collect(instalment, "2000.01", approve=False)
    assert refused.value.problems[0].field == "amount"


def test_daily_run_reminds_before_and_alerts_overdue_once(world: World) -> None:
    contract = world.contract("50000.00")
    instalment = world.instalment(contract, "50000.00", date(2026, 3, 5), remind_days=3)

    assert world.run_daily().reminded == 1  # due in 3 days
    assert world.run_daily().reminded == 0  # the same day again: nothing new
    assert world.notifications("rep") == [
        ("collection_due", f"Contract {_number(world, contract)}: instalment 1 (50000.00) is due in 3 days")
    ]

    world.advance(timedelta(days=4))  # 03-06: one day overdue
    run = world.run_daily()
    assert (run.marked_overdue, run.alerted, run.notifications) == (1, 1, 2)
    again = world.run_daily()
    assert (again.marked_overdue, again.alerted, again.notifications) == (0, 0, 0)
    world.advance(timedelta(days=1))
    assert world.run_daily().alerted == 0  # no alert every day
    overdue_alert = ("collection_overdue", f"Contract {_number(world, contract)}: instalment 1 is 1 days overdue")
    assert world.notifications("rep")[1:] == [overdue_alert]
    assert world.notifications("manager") == [overdue_alert]
    assert world.notifications("director") == []

    world.collect(instalment, "50000.00")
    world.advance(timedelta(days=7))
    run = world.run_daily()
    assert (run.alerted, run.notifications) == (0, 0)  # paid: no more alerts


def test_another_tenant_never_finds_the_plan(world: World, other_tenant: Tenant) -> None:
    contract = world.contract("10000.00")
    instalment = world.instalment(contract, "10000.00", date(2026, 4, 1))
    stranger = other_tenant["admin"].actor
    with world.db.unit_of_work(stranger) as session:
        with pytest.raises(NotFound):
            cash.plan(session, stranger, contract_id=contract)
        with pytest.raises(NotFound):
            cash.record_collection(
                session, stranger, instalment_id=instalment, amount=Decimal("1.00"), received_on=date(2026, 3, 1)
            )
        assert cash.overdue(session, stranger) == []


def _number(world: World, contract_id: int) -> str:
    from closeloop.crm.contracts.models import Contract

    with world.db.reading(None, system=True) as session:
        contract = session.get(Contract, contract_id)
        assert contract is not None
        return contract.number


def test_the_api_says_since_when_an_instalment_is_overdue(world: World, client: TestClient) -> None:
    contract = world.contract("100000.00")
    late = world.instalment(contract, "30000.00", date(2026, 3, 10))
    world.instalment(contract, "70000.00", date(2026, 5, 10))
    world.advance(timedelta(days=12))  # 2026-03-14: the first is past due; the daily run has not run

    body = Api(client, world.tenant["rep"]).request("GET", f"/cash/contracts/{contract}").json()

    lines = {line["id"]: line for line in body["instalments"]}
    assert lines[late]["status"] == "overdue"
    assert lines[late]["overdue_since"] == "2026-03-11"  # the first day after its due date
    assert [line["overdue_since"] for line in body["instalments"] if line["id"] != late] == [None]
