"""Targets (CN-6): attainment worked by hand from the records, departments with their
sub-departments, and leaderboards that rank only what the caller may see."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update

from closeloop.core.errors import Forbidden
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind
from closeloop.org.models import Department, User
from closeloop.targets import service as targets
from closeloop.targets.models import Metric, TargetScope
from tests.cash.conftest import World


def _org_chart(world: World) -> tuple[int, int]:
    """销售中心 › 华东销售部 (the manager) › 华东一组 (rep, rep2)."""
    with world.db.unit_of_work(None, system=True) as session:
        org = world.tenant.organization_id
        center = Department(organization_id=org, name="销售中心")
        session.add(center)
        session.flush()
        east = Department(organization_id=org, name="华东销售部", parent_id=center.id)
        session.add(east)
        session.flush()
        group = Department(organization_id=org, name="华东一组", parent_id=east.id)
        session.add(group)
        session.flush()
        for key, department_id in (("manager", east.id), ("rep", group.id), ("rep2", group.id)):
            session.execute(
                update(User).where(User.id == world.tenant[key].user_id).values(department_id=department_id)
            )
        return east.id, group.id


def _records(world: World) -> None:
    """March 2026: rep signs 100,000 + 50,000 (and 999 in February), collects 30,000 approved and
    10,000 awaiting approval, opens 2 accounts, makes 3 visits and 1 call; rep2 signs 80,000 and
    collects 80,000, makes 1 visit; the manager signs 20,000."""
    first = world.contract("100000.00", owner="rep", signed_on=date(2026, 3, 1))
    world.contract("50000.00", owner="rep", signed_on=date(2026, 3, 2))
    world.contract("999.00", owner="rep", signed_on=date(2026, 2, 28))
    second = world.contract("80000.00", owner="rep2", signed_on=date(2026, 3, 2))
    world.contract("20000.00", owner="manager", signed_on=date(2026, 3, 2))
    instalment = world.instalment(first, "100000.00", date(2026, 4, 1))
    world.collect(instalment, "30000.00")
    world.collect(instalment, "10000.00", approve=False)
    with world.db.unit_of_work(world.actor("manager")) as session:
        from closeloop.cash import service as cash

        manager = world.actor("manager")
        other = cash.add_instalment(
            session, manager, contract_id=second, amount=Decimal("80000.00"), due_on=date(2026, 3, 20)
        )
        collection = cash.record_collection(
            session, manager, instalment_id=other.id, amount=Decimal("80000.00"), received_on=date(2026, 3, 2)
        )
        cash.approve_collection(session, manager, collection.id)
    march = datetime(2026, 3, 2, 10, tzinfo=UTC)
    org = world.tenant.organization_id
    with world.db.unit_of_work(None, system=True) as session:
        for name in ("新客户甲", "新客户乙"):
            session.add(Account(organization_id=org, name=name, owner_id=world.tenant["rep"].user_id))
        for key, kind in (("rep", "visit"), ("rep", "visit"), ("rep", "visit"), ("rep", "call"), ("rep2", "visit")):
            session.add(
                Activity(
                    organization_id=org, kind=ActivityKind(kind), occurred_at=march, user_id=world.tenant[key].user_id
                )
            )


def test_attainment_worked_by_hand(world: World) -> None:
    east, group = _org_chart(world)
    _records(world)
    vp = world.actor("sales_vp")
    with world.db.unit_of_work(vp) as session:
        for scope, subject, metric, value in (
            (TargetScope.COMPANY, {}, Metric.CONTRACT_AMOUNT, "500000"),
            (TargetScope.DEPARTMENT, {"department_id": east}, Metric.CONTRACT_AMOUNT, "400000"),
            (TargetScope.DEPARTMENT, {"department_id": group}, Metric.COLLECTIONS, "200000"),
            (TargetScope.USER, {"user_id": world.tenant["rep"].user_id}, Metric.CONTRACT_AMOUNT, "120000"),
            (TargetScope.USER, {"user_id": world.tenant["rep"].user_id}, Metric.NEW_ACCOUNTS, "4"),
            (TargetScope.USER, {"user_id": world.tenant["rep"].user_id}, Metric.VISITS, "6"),
            (TargetScope.USER, {"user_id": world.tenant["rep2"].user_id}, Metric.VISITS, "2"),
        ):
            targets.set_target(
                session, vp, scope=scope, metric=metric, year=2026, month=3, value=Decimal(value), **subject
            )

    with world.db.reading(vp) as session:
        figures = {
            (a.target.subject_key, str(a.target.metric)): (str(a.actual), str(a.ratio))
            for a in targets.attainment(session, vp, year=2026, month=3)
        }
    rep, rep2 = world.tenant["rep"].user_id, world.tenant["rep2"].user_id
    assert figures == {
        # 100,000 + 50,000 + 80,000 + 20,000 signed in March (the 999 was February) = 250,000 of 500,000
        ("company", "contract_amount"): ("250000.00", "50.0"),
        # the manager's department and its group: the same four contracts
        (f"department:{east}", "contract_amount"): ("250000.00", "62.5"),
        # approved only: 30,000 + 80,000 = 110,000 of 200,000
        (f"department:{group}", "collections"): ("110000.00", "55.0"),
        (f"user:{rep}", "contract_amount"): ("150000.00", "125.0"),
        (f"user:{rep}", "new_accounts"): ("2", "50.0"),
        (f"user:{rep}", "visits"): ("3", "50.0"),
        (f"user:{rep2}", "visits"): ("1", "50.0"),
    }
    # the rep's own panel: their targets and their department's (the group), not rep2's
    rep_actor = world.actor("rep")
    with world.db.reading(rep_actor) as session:
        mine = {a.target.subject_key for a in targets.my_attainment(session, rep_actor, year=2026, month=3)}
        everyone = {a.target.subject_key for a in targets.attainment(session, rep_actor, year=2026, month=3)}
    assert mine == {f"user:{rep}", f"department:{group}"}
    assert f"user:{rep2}" not in everyone
    with world.db.unit_of_work(rep_actor) as session, pytest.raises(Forbidden):
        targets.set_target(
            session, rep_actor, scope=TargetScope.COMPANY, metric=Metric.VISITS, year=2026, month=3, value=Decimal(1)
        )


def test_leaderboard_respects_scope(world: World) -> None:
    _org_chart(world)
    _records(world)

    def board(key: str, by: str = "user", metric: Metric = Metric.CONTRACT_AMOUNT) -> list[tuple[int, str, str]]:
        actor = world.actor(key)
        with world.db.reading(actor) as session:
            return [
                (s.rank, s.name, str(s.value))
                for s in targets.leaderboard(session, actor, metric=metric, year=2026, month=3, by=by)
            ]

    rep_name, rep2_name, manager_name = (_display(world, key) for key in ("rep", "rep2", "manager"))
    assert board("sales_vp") == [(1, rep_name, "150000.00"), (2, rep2_name, "80000.00"), (3, manager_name, "20000.00")]
    assert board("manager") == [(1, rep_name, "150000.00"), (2, rep2_name, "80000.00"), (3, manager_name, "20000.00")]
    assert board("rep") == [(1, rep_name, "150000.00")]
    assert board("sales_vp", "department") == [(1, "华东一组", "230000.00"), (2, "华东销售部", "20000.00")]
    # a rep's department board: their own department only, with its whole figure — the 110,000 its
    # collections target counts — not just the rep's 80,000 under the department's name
    assert board("rep2", "department", Metric.COLLECTIONS) == [(1, "华东一组", "110000.00")]
    assert board("rep", "department") == [(1, "华东一组", "230000.00")]


def _display(world: World, key: str) -> str:
    with world.db.reading(None, system=True) as session:
        user = session.get(User, world.tenant[key].user_id)
        assert user is not None
        return user.display_name
