"""The demo's approvals and field plans (CN-4, CN-5): an approval flow per record type — a contract
above 200,000 goes up two levels of supervisors, a quote discount above 15% to the sales VP after the
supervisor, collections to finance (the collection awaiting approval is in the CFO's inbox; the cash
pages link to it), account transfers and expense claims to the direct supervisor
(expenses above 5,000 also to the CFO) — and approvals demo.rep submitted, some still waiting for
demo.manager and some decided, so the manager's inbox is not empty; and demo.rep's visit plans for
the demo's day and the day after. Everything goes through the real services, as the people
themselves (flows as the sales VP), so routes, snapshots, notifications and the audit trail are
the ones the product makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.approvals import flows
from closeloop.approvals import service as approvals
from closeloop.cash.models import Collection, CollectionStatus
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import tenant_clause
from closeloop.fieldwork import plans
from closeloop.org.models import User
from closeloop.org.service import actor_for


def _branch(key: str, name: str, priority: int, conditions: list[dict[str, Any]], *steps: dict[str, Any],
            cc: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"key": key, "name": name, "priority": priority, "conditions": conditions, "steps": list(steps),
            "cc": cc or []}  # fmt: skip


def _step(key: str, name: str, *approvers: dict[str, Any], mode: str = "any") -> dict[str, Any]:
    return {"key": key, "name": name, "mode": mode, "approvers": list(approvers)}


SUPERVISOR = {"kind": "supervisor"}
CFO = {"kind": "role", "role": "cfo", "within": None}
DEFAULT = _branch("default", "默认", 9, [], _step("supervisor", "直属主管", SUPERVISOR))
#: (key, name, record type, branches) of the demo's flows; the keys show the built-in names in the
#: reader's language (:mod:`closeloop.approvals.names`)
DEMO_FLOWS: tuple[tuple[str, str, str, list[dict[str, Any]]], ...] = (
    ("contract_approval", "合同审批", "contract", [
        _branch("large_contract", "大额合同", 1, [{"field": "amount", "op": "gt", "value": 200000}],
                _step("two_supervisors", "两级主管", {"kind": "supervisors", "levels": 2}, mode="sequence"),
                cc=[CFO]),
        DEFAULT,
    ]),
    ("quote_discount_approval", "报价折扣审批", "quote", [
        _branch("large_discount", "大折扣", 1, [{"field": "discount_percent", "op": "gt", "value": 15}],
                _step("supervisor", "直属主管", SUPERVISOR),
                _step("sales_vp", "销售副总", {"kind": "role", "role": "sales_vp", "within": None})),
        DEFAULT,
    ]),
    ("collection_approval", "回款审批", "collection", [
        _branch("default", "默认", 9, [], _step("finance", "财务", CFO)),
    ]),
    ("account_transfer_approval", "客户转移审批", "account_transfer", [DEFAULT]),
    ("expense_approval", "费用报销审批", "expense", [
        _branch("large_expense", "大额报销", 1, [{"field": "amount", "op": "gt", "value": 5000}],
                _step("supervisor", "直属主管", SUPERVISOR), _step("cfo", "财务总监", CFO)),
        DEFAULT,
    ]),
)  # fmt: skip
#: demo.rep's expense claims: (amount, category, days before the demo's day, what becomes of it)
EXPENSES: tuple[tuple[str, str, int, str], ...] = (
    ("860.00", "差旅", 3, "pending"),
    ("12800.00", "会议", 6, "approved"),  # the manager approved; the CFO's step is open
    ("420.50", "招待", 9, "approved"),
    ("2600.00", "礼品", 12, "rejected"),
)


@dataclass
class WorkflowSeeded:
    flows: int = 0
    approvals: int = 0
    pending_for_manager: int = 0
    plan_days: int = 0


def _user(session: Session, organization_id: int, username: str) -> User:
    user = session.scalar(select(User).where(tenant_clause(organization_id, User), User.username == username))
    assert user is not None, username
    return user


def _submit_waiting_collections(session: Session, organization_id: int) -> int:
    """The collections the cash seed left awaiting a decision (recorded before the flows existed) go
    into the collection flow under their recorder's name, as recording one does now: into finance's
    approval inbox. Returns how many."""
    waiting = session.execute(
        select(Collection.id, Collection.recorded_by_id)
        .where(tenant_clause(organization_id, Collection), Collection.status == CollectionStatus.SUBMITTED)
        .order_by(Collection.id)
    ).all()
    for collection_id, recorder_id in waiting:
        recorder = session.get(User, recorder_id)
        assert recorder is not None, collection_id
        approvals.submit(session, actor_for(session, recorder), record_type="collection", record_id=collection_id)
    return len(waiting)


def seed_workflow(session: Session, organization_id: int, *, prefix: str, anchor: datetime) -> WorkflowSeeded:
    result = WorkflowSeeded()
    vp = actor_for(session, _user(session, organization_id, f"{prefix}.sales_vp"))
    rep_user = _user(session, organization_id, f"{prefix}.rep")
    manager_user = _user(session, organization_id, f"{prefix}.manager")
    rep, manager = actor_for(session, rep_user), actor_for(session, manager_user)
    for key, name, record_type, branches in DEMO_FLOWS:
        definition = {"key": key, "branches": branches}
        flows.create_flow(session, vp, {"name": name, "record_type": record_type, "definition": definition})
        result.flows += 1
    result.approvals += _submit_waiting_collections(session, organization_id)

    day = calendar.local_date(anchor, settings.business_timezone)
    for amount, category, days, outcome in EXPENSES:
        spent = day - timedelta(days=days)
        details = {"amount": amount, "category": category, "spent_on": spent.isoformat(),
                   "description": f"{spent:%m月%d日}{category}费用"}  # fmt: skip
        approval = approvals.submit(session, rep, record_type="expense", record_id=None, details=details)
        result.approvals += 1
        if outcome == "approved":
            approvals.approve(session, manager, approval.id, comment="同意")
        elif outcome == "rejected":
            approvals.reject(session, manager, approval.id, reason="礼品需事先报备，请补充说明后重新提交")
        else:
            result.pending_for_manager += 1

    accounts = list(
        session.scalars(
            select(Account.id)
            .where(tenant_clause(organization_id, Account), Account.owner_id == rep_user.id)
            .order_by(Account.id)
            .limit(7)
        )
    )
    colleague = session.scalar(
        select(User.id)
        .where(
            tenant_clause(organization_id, User),
            User.manager_id == manager_user.id,
            User.id != rep_user.id,
            User.is_active.is_(True),
        )
        .order_by(User.id)
    )
    if accounts and colleague is not None:
        approvals.submit(
            session, rep, record_type="account_transfer", record_id=accounts[-1],
            details={"to_owner_id": colleague, "reason": "客户已迁至同事负责的城市"},
        )  # fmt: skip
        result.approvals += 1
        result.pending_for_manager += 1

    for offset, stops in ((0, accounts[:4]), (1, accounts[4:6])):
        if stops:
            plans.set_plan(
                session, rep, user_id=rep_user.id, day=day + timedelta(days=offset),
                stops=[plans.PlannedStop(account_id, "回访" if offset else None) for account_id in stops],
            )  # fmt: skip
            result.plan_days += 1
    return result
