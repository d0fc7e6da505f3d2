"""The demo's lead to cash and targets (CN-3, CN-6): a contract for every won deal, signed the day
it was won and numbered per year in signing order; twelve of the most recent carry a collection
plan (30% on signing, 60% on acceptance, 10% retention after a year) with approved collections for
what fell due before the anchor — except one acceptance instalment left unpaid (overdue) and one
collection awaiting approval — and this month's and this year's targets for the company, the sales
departments and the reps, set from the bookings before the anchor's month so that attainment
reads like a real team's (some above, some below). Deterministic: no random choices, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
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

#: contracts that carry a collection plan (the rest of the won deals' contracts have none)
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
    planned: int = 0
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
            Opportunity.closed_at <= anchor,
        )
        .order_by(Opportunity.closed_at.desc(), Opportunity.id)
    ).all()
    numbers = _numbers([(row[0], row[5]) for row in won])
    every = list(won)
    won = [row for row in won if row[5] is not None and row[5] >= anchor - timedelta(days=200)]
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
    for index, row in enumerate(won):
        opportunity_id, _, _, owner_id, amount, closed_at = row
        if amount is None or closed_at is None:  # excluded by the query; for the type checker
            continue
        signed_on: date = closed_at.date()
        contract = _signed(organization_id, numbers[opportunity_id], row)
        session.add(contract)
        session.flush()
        result.contracts += 1
        result.planned += 1
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
    planned = {row[0] for row in won}
    for row in every:
        if row[0] in planned or row[4] is None or row[5] is None:
            continue
        session.add(_signed(organization_id, numbers[row[0]], row))
        result.contracts += 1
    session.flush()
    result.targets = _targets(session, organization_id, anchor)
    session.flush()
    return result


def contract_title(deal_name: str) -> str:
    """A demo contract's title from its deal's name, in the name's own language: a Chinese deal
    gets "合同", an English one "contract" (not "… Consumables 合同" on an English page). The title
    is the record's data, shown as stored in either language, so the demo writes it the way a
    person of that customer would."""
    chinese = any("\u4e00" <= character <= "\u9fff" for character in deal_name)
    return (f"{deal_name}合同" if chinese else f"{deal_name} contract")[:200]


def _signed(organization_id: int, number: str, won: Any) -> Contract:
    """The contract of a won deal (``won``: id, name, account, owner, amount, closed at), in force
    from the day the deal was won."""
    opportunity_id, name, account_id, owner_id, amount, closed_at = won
    return Contract(
        organization_id=organization_id,
        number=number,
        title=contract_title(name),
        account_id=account_id,
        opportunity_id=opportunity_id,
        status=ContractStatus.ACTIVE,
        signed_on=closed_at.date(),
        starts_on=closed_at.date(),
        amount=quantize(Decimal(amount)),
        currency="CNY",
        owner_id=owner_id,
        clauses=[],
        created_at=closed_at,
        updated_at=closed_at,
    )


def _numbers(signed: list[tuple[int, datetime | None]]) -> dict[int, str]:
    """Contract numbers per year in signing order (HT-2026-0001 is the year's first), by deal id."""
    numbers: dict[int, str] = {}
    per_year: dict[int, int] = {}
    dated = [(closed_at, opportunity_id) for opportunity_id, closed_at in signed if closed_at is not None]
    for closed_at, opportunity_id in sorted(dated):
        per_year[closed_at.year] = per_year.get(closed_at.year, 0) + 1
        numbers[opportunity_id] = f"HT-{closed_at.year}-{per_year[closed_at.year]:04d}"
    return numbers


def _rounded_up(value: Decimal, step: int) -> Decimal:
    """``value`` rounded up to a multiple of ``step`` (targets are round figures)."""
    return Decimal(-(-int(value) // step) * step)


def _department_targets(departments: list[Any], leaves: dict[int, Decimal]) -> dict[int, Decimal]:
    """This month's contract target per sales department: a team's comes from its reps'
    (``leaves``; 800,000 for a team without reps); a parent department asks for 15% more than its
    children together (a stretch over what they were given), so its target is not the sum of theirs."""
    children: dict[int | None, list[int]] = {}
    for department_id, parent_id in departments:
        children.setdefault(parent_id, []).append(department_id)
    values: dict[int, Decimal] = {}

    def value(department_id: int) -> Decimal:
        below = children.get(department_id, [])
        if not below:
            values[department_id] = leaves.get(department_id, Decimal(800000))
        else:
            total = sum((value(child) for child in below), Decimal(0))
            values[department_id] = _rounded_up(total * Decimal("1.15"), 100000)
        return values[department_id]

    known = {department_id for department_id, _ in departments}
    for department_id, parent_id in departments:
        if parent_id not in known and department_id not in values:
            value(department_id)
    return values


def _months_before(year: int, month: int, count: int) -> tuple[date, date]:
    """The first day of the ``count`` whole months before ``year``-``month``, and that month's first day."""
    index = year * 12 + (month - 1) - count
    return date(index // 12, index % 12 + 1, 1), date(year, month, 1)


def _booked(session: Session, organization_id: int, first: date, last: date) -> dict[int | None, Decimal]:
    """Contract amounts signed from ``first`` up to (not including) ``last``, per owner."""
    booked: dict[int | None, Decimal] = {}
    for owner_id, amount in session.execute(
        select(Contract.owner_id, Contract.amount).where(
            tenant_clause(organization_id, Contract), Contract.signed_on >= first, Contract.signed_on < last
        )
    ):
        booked[owner_id] = booked.get(owner_id, Decimal(0)) + Decimal(amount or 0)
    return booked


def _targets(session: Session, organization_id: int, anchor: datetime) -> int:
    """Targets as a sales team sets them from its bookings: a rep's month is 10% over their average
    month of the last three whole months (at least 300,000); a team asks 5% more than its reps were
    given; the company's year is the last twelve months' bookings plus 10%, its collections 90% of
    the instalments that fall due in the year."""
    year, month = anchor.year, anchor.month
    reps = list(
        session.execute(
            select(User.id, User.department_id)
            .where(tenant_clause(organization_id, User), User.role == Role.REP)
            .order_by(User.id)
        )
    )
    recent = _booked(session, organization_id, *_months_before(year, month, 3))
    rep_targets = {
        rep_id: max(Decimal(300000), _rounded_up(recent.get(rep_id, Decimal(0)) / 3 * Decimal("1.1"), 100000))
        for rep_id, _ in reps
    }
    teams: dict[int, Decimal] = {}
    for rep_id, department_id in reps:
        if department_id is not None:
            teams[department_id] = teams.get(department_id, Decimal(0)) + rep_targets[rep_id]
    leaves = {department_id: _rounded_up(total * Decimal("1.05"), 100000) for department_id, total in teams.items()}
    sales_departments = list(
        session.execute(
            select(Department.id, Department.parent_id)
            .where(tenant_clause(organization_id, Department), Department.name.like("%销售%"))
            .order_by(Department.id)
        )
    )
    departments = _department_targets(sales_departments, leaves)
    known = {department_id for department_id, _ in sales_departments}
    roots = sum((v for d, v in departments.items() if dict(sales_departments).get(d) not in known), Decimal(0))
    # the company asks a little more than its sales departments were given, never less
    company_month = _rounded_up(roots * Decimal("1.05"), 100000)
    last_twelve = sum(_booked(session, organization_id, *_months_before(year, month, 12)).values(), Decimal(0))
    company_year = _rounded_up(last_twelve * Decimal("1.1"), 1000000)
    due_this_year = session.scalar(
        select(func.coalesce(func.sum(Instalment.amount), 0)).where(
            tenant_clause(organization_id, Instalment),
            Instalment.due_on >= date(year, 1, 1),
            Instalment.due_on < date(year + 1, 1, 1),
        )
    )
    collections_year = _rounded_up(Decimal(due_this_year or 0) * Decimal("0.9"), 100000)
    rows: list[tuple[TargetScope, str, int | None, int | None, Metric, int, Decimal]] = [
        (TargetScope.COMPANY, "company", None, None, Metric.CONTRACT_AMOUNT, 0, company_year),
        (TargetScope.COMPANY, "company", None, None, Metric.COLLECTIONS, 0, collections_year),
        (TargetScope.COMPANY, "company", None, None, Metric.CONTRACT_AMOUNT, month, company_month),
    ]
    for department_id, value in departments.items():
        rows.append(
            (TargetScope.DEPARTMENT, f"department:{department_id}", department_id, None, Metric.CONTRACT_AMOUNT,
             month, value)
        )  # fmt: skip
    for rep_id, _ in reps:
        rows.append(
            (TargetScope.USER, f"user:{rep_id}", None, rep_id, Metric.CONTRACT_AMOUNT, month, rep_targets[rep_id])
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
