"""The demo's lead to cash and targets (CN-3, CN-6): contracts for the seller's most recent won
deals, each with a collection plan (30% on signing, 60% on acceptance, 10% retention after a year),
approved collections for what fell due before the anchor — except one acceptance instalment left
unpaid (overdue) and one collection awaiting approval — and this month's and this year's targets
for the company, the sales departments and the reps. Deterministic: no random choices, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.cash.models import Collection, CollectionMethod, CollectionStatus, Instalment, Invoice, InvoiceStatus
from closeloop.core.money import quantize
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ContractStatus, Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.governance.permissions import Role
from closeloop.org.models import Department, User
from closeloop.targets.models import Metric, Target, TargetScope

CONTRACTS = 12
#: of which demo.rep's (the sign-in the README suggests first)
REP_CONTRACTS = 3
DEMO_REP = "demo.rep"
#: (share of the contract, days after signing it falls due, remind days before)
PLAN = ((Decimal("0.30"), 7, 3), (Decimal("0.60"), 75, 7), (Decimal("0.10"), 365, 15))
#: the demo buyer's invoice title (a valid unified social credit code)
TAX_ID = "91350100M000100Y43"


@dataclass
class CashSeed:
    contracts: int = 0
    instalments: int = 0
    collections: int = 0
    overdue_contract_id: int | None = None
    awaiting: bool = False
    targets: int = 0


def seed_cash(session: Session, organization_id: int, *, anchor: datetime) -> CashSeed:
    """Contracts, plans, collections, an invoice and targets for the demo seller."""
    result = CashSeed()
    cfo_id = session.scalar(
        select(User.id).where(tenant_clause(organization_id, User), User.role == Role.CFO).order_by(User.id)
    )
    won = session.execute(
        select(
            Opportunity.id,
            Opportunity.name,
            Opportunity.account_id,
            Opportunity.owner_id,
            Opportunity.amount,
            Opportunity.closed_at,
        )
        .where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage == Stage.WON,
            Opportunity.amount.is_not(None),
            Opportunity.owner_id.is_not(None),
            Opportunity.closed_at.is_not(None),
            Opportunity.closed_at >= anchor - timedelta(days=200),
        )
        .order_by(Opportunity.closed_at.desc(), Opportunity.id)
    ).all()
    # demo.rep's own first (so the rep who signs in first finds contracts, a plan with an approved
    # collection, the invoice and the overdue instalment): one deal old enough for its acceptance
    # instalment to be due, and their most recent ones; then the rest spread over the last 200 days
    # (some plans fully due, some half, some just signed)
    rep_id = session.scalar(select(User.id).where(tenant_clause(organization_id, User), User.username == DEMO_REP))
    mine = [row for row in won if row[3] == rep_id]
    due_by = anchor - timedelta(days=PLAN[1][1] + 1)
    old = [row for row in mine if row[5] is not None and row[5] < due_by][:1]
    picked = [*old, *[row for row in mine if row not in old][: REP_CONTRACTS - len(old)]]
    others = [row for row in won if row not in picked]
    won = [*picked, *others[:: max(len(others) // (CONTRACTS - len(picked)), 1)][: CONTRACTS - len(picked)]]
    today = anchor.date()
    decided_at = anchor - timedelta(days=1)
    for index, (opportunity_id, name, account_id, owner_id, amount, closed_at) in enumerate(won):
        if amount is None or closed_at is None:  # excluded by the query; for the type checker
            continue
        signed_on: date = closed_at.date()
        contract = Contract(
            organization_id=organization_id,
            number=f"HT-{signed_on.year}-{index + 1:04d}",
            title=f"{name} 合同"[:200],
            account_id=account_id,
            opportunity_id=opportunity_id,
            status=ContractStatus.ACTIVE,
            signed_on=signed_on,
            starts_on=signed_on,
            amount=quantize(Decimal(amount)),
            currency="CNY",
            owner_id=owner_id,
            clauses=[],
            created_at=closed_at,
            updated_at=closed_at,
        )
        session.add(contract)
        session.flush()
        result.contracts += 1
        left_unpaid = result.overdue_contract_id is None and signed_on + timedelta(days=PLAN[1][1]) < today
        total = quantize(Decimal(amount))
        shares = [quantize(total * share) for share, _, _ in PLAN[:-1]]
        amounts = [*shares, total - sum(shares, Decimal(0))]  # the last takes the rounding
        for number, ((_, days, remind), part) in enumerate(zip(PLAN, amounts, strict=True), start=1):
            due_on = signed_on + timedelta(days=days)
            instalment = Instalment(
                organization_id=organization_id,
                contract_id=contract.id,
                number=number,
                amount=part,
                due_on=due_on,
                remind_days=remind,
                created_at=closed_at,
                updated_at=closed_at,
            )
            session.add(instalment)
            session.flush()
            result.instalments += 1
            # one collection received ahead of its due date waits for approval; nothing else not yet due
            awaiting = due_on >= today and not result.awaiting and number < len(PLAN)
            if (due_on >= today and not awaiting) or (number == 2 and left_unpaid):
                continue
            result.awaiting = result.awaiting or awaiting
            session.add(
                Collection(
                    organization_id=organization_id,
                    contract_id=contract.id,
                    instalment_id=instalment.id,
                    amount=instalment.amount,
                    received_on=today - timedelta(days=1) if awaiting else due_on - timedelta(days=2),
                    method=CollectionMethod.BANK_TRANSFER,
                    reference=f"HX{due_on:%Y%m%d}{index:03d}",
                    status=CollectionStatus.SUBMITTED if awaiting else CollectionStatus.APPROVED,
                    recorded_by_id=owner_id,
                    decided_by_id=None if awaiting else cfo_id,
                    decided_at=None if awaiting else decided_at,
                )
            )
            result.collections += 1
        if left_unpaid:
            result.overdue_contract_id = contract.id
        if index == 0:
            session.add(
                Invoice(
                    organization_id=organization_id,
                    contract_id=contract.id,
                    amount=amounts[0],
                    status=InvoiceStatus.ISSUED,
                    number=f"0440319{signed_on:%m%d}01",
                    issued_on=signed_on + timedelta(days=3),
                    title_name="华东示范医院",
                    tax_id=TAX_ID,
                    bank_name="中国工商银行上海分行",
                    bank_account="1001234567890123",
                    address_phone="上海市黄浦区瑞金二路197号 021-64370045",
                )
            )
    result.targets = _targets(session, organization_id, anchor)
    session.flush()
    return result


def _department_targets(departments: list[Any]) -> dict[int, Decimal]:
    """This month's contract target per sales department: teams 800,000 to 1,400,000; a parent
    department asks for 15% more than its children together (a stretch over what they were given),
    so its target is not the sum of theirs."""
    children: dict[int | None, list[int]] = {}
    for department_id, parent_id in departments:
        children.setdefault(parent_id, []).append(department_id)
    values: dict[int, Decimal] = {}

    def value(department_id: int, index: int) -> Decimal:
        below = children.get(department_id, [])
        if not below:
            values[department_id] = Decimal(800000 + (index % 4) * 200000)
        else:
            total = sum((value(child, position) for position, child in enumerate(below)), Decimal(0))
            values[department_id] = (total * Decimal("1.15") / 100000).quantize(Decimal(1)) * 100000
        return values[department_id]

    known = {department_id for department_id, _ in departments}
    for position, (department_id, parent_id) in enumerate(departments):
        if parent_id not in known and department_id not in values:
            value(department_id, position)
    return values


def _targets(session: Session, organization_id: int, anchor: datetime) -> int:
    year, month = anchor.year, anchor.month
    reps = list(
        session.scalars(
            select(User.id).where(tenant_clause(organization_id, User), User.role == Role.REP).order_by(User.id)
        )
    )
    sales_departments = list(
        session.execute(
            select(Department.id, Department.parent_id)
            .where(tenant_clause(organization_id, Department), Department.name.like("%销售%"))
            .order_by(Department.id)
        )
    )
    departments = _department_targets(sales_departments)
    known = {department_id for department_id, _ in sales_departments}
    roots = sum((v for d, v in departments.items() if dict(sales_departments).get(d) not in known), Decimal(0))
    # the company asks a little more than its sales departments were given, never less; the year is
    # twelve such months, collections a little behind contracts
    company_month = max(Decimal(5000000), (roots * Decimal("1.05") / 100000).quantize(Decimal(1)) * 100000)
    rows: list[tuple[TargetScope, str, int | None, int | None, Metric, int, Decimal]] = [
        (TargetScope.COMPANY, "company", None, None, Metric.CONTRACT_AMOUNT, 0, company_month * 12),
        (TargetScope.COMPANY, "company", None, None, Metric.COLLECTIONS, 0, company_month * 10),
        (TargetScope.COMPANY, "company", None, None, Metric.CONTRACT_AMOUNT, month, company_month),
    ]
    for department_id, value in departments.items():
        rows.append(
            (TargetScope.DEPARTMENT, f"department:{department_id}", department_id, None, Metric.CONTRACT_AMOUNT,
             month, value)
        )  # fmt: skip
    for rep_id in reps:
        rows.append(
            (TargetScope.USER, f"user:{rep_id}", None, rep_id, Metric.CONTRACT_AMOUNT, month, Decimal("600000"))
        )
        rows.append((TargetScope.USER, f"user:{rep_id}", None, rep_id, Metric.VISITS, month, Decimal("12")))
        rows.append((TargetScope.USER, f"user:{rep_id}", None, rep_id, Metric.NEW_ACCOUNTS, month, Decimal("5")))
    for scope, key, target_department, target_user, metric, period_month, value in rows:
        session.add(
            Target(
                organization_id=organization_id,
                scope=scope,
                subject_key=key,
                department_id=target_department,
                user_id=target_user,
                metric=metric,
                year=year,
                month=period_month,
                value=value,
            )
        )
    return len(rows)
