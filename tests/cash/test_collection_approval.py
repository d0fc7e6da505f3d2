"""A collection decided through an approval flow (CN-3 with CN-4): with an enabled flow for
collections, recording one submits it at once; the flow's end approves or rejects it, and the
direct decision is refused while the flow runs."""

from __future__ import annotations

from datetime import date

import pytest

from closeloop.approvals import flows
from closeloop.approvals import service as approvals
from closeloop.cash import service as cash
from closeloop.core.errors import Conflict
from tests.cash.conftest import World


def _collection_flow(world: World) -> None:
    ops = world.actor("sales_vp")
    definition = {
        "branches": [
            {
                "name": "大额",
                "conditions": [{"field": "amount", "op": "gte", "value": "50000"}],
                "steps": [{"name": "财务", "mode": "any", "approvers": [{"kind": "role", "role": "cfo"}]},
                          {"name": "销售副总", "mode": "any", "approvers": [{"kind": "role", "role": "sales_vp"}]}],
            },
            {"name": "默认", "conditions": [],
             "steps": [{"name": "财务", "mode": "any", "approvers": [{"kind": "role", "role": "cfo"}]}]},
        ]
    }  # fmt: skip
    with world.db.unit_of_work(ops) as session:
        flows.create_flow(session, ops, {"name": "回款审批", "record_type": "collection", "definition": definition})


def test_a_collection_goes_through_the_organizations_flow(world: World) -> None:
    contract = world.contract("200000.00")
    instalment = world.instalment(contract, "100000.00", date(2026, 4, 1))
    _collection_flow(world)
    big = world.collect(instalment, "60000.00", approve=False)
    small = world.collect(instalment, "1000.00", approve=False)
    cfo, vp = world.actor("cfo"), world.actor("sales_vp")
    with world.db.reading(cfo) as session:
        big_approval = cash.pending_approval(session, cfo.organization_id, big)
        small_approval = cash.pending_approval(session, cfo.organization_id, small)
    assert big_approval is not None
    assert small_approval is not None
    # the direct decision waits for the flow
    with pytest.raises(Conflict, match="approval") as refused, world.db.unit_of_work(cfo) as session:
        cash.approve_collection(session, cfo, big)
    assert refused.value.code == "in_approval"
    # the large one needs finance, then the sales VP: it counts only at the end
    with world.db.unit_of_work(cfo) as session:
        approvals.approve(session, cfo, big_approval)
    assert str(world.collection(big).status) == "submitted"
    assert world.amounts(contract).collected == 0
    with world.db.unit_of_work(vp) as session:
        approvals.approve(session, vp, big_approval)
    assert str(world.collection(big).status) == "approved"
    assert str(world.amounts(contract).collected) == "60000.00"
    # the small one, finance alone; a rejection leaves it uncounted
    with world.db.unit_of_work(cfo) as session:
        approvals.reject(session, cfo, small_approval, reason="银行流水对不上")
    assert str(world.collection(small).status) == "rejected"
    assert str(world.amounts(contract).collected) == "60000.00"
