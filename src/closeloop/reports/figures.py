"""The figures a 日报/周报 is filled in with, computed from the period's records.

Each figure is one function registered with :func:`figure`: it gets the organization, the people
and the period, and answers per person a count and, where money is involved, the amounts per
currency. Adding a figure — collections (回款) once ``closeloop.cash`` records them — is one more
decorated function here; the reports, the pages and the API pick it up from :data:`FIGURES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from closeloop.core import calendar
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ActivityKind, Stage
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.scope import tenant_clause
from closeloop.fieldwork.models import CheckIn

#: the open stages in their order; a move to a later one advances an opportunity
_OPEN_ORDER = {Stage.PROSPECTING: 0, Stage.QUALIFICATION: 1, Stage.PROPOSAL: 2, Stage.NEGOTIATION: 3}


@dataclass(frozen=True)
class Window:
    """A report's period: local days ``first`` … ``last`` and the UTC interval ``[start, end)``."""

    organization_id: int
    user_ids: tuple[int, ...]
    first: date
    last: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, organization_id: int, user_ids: Sequence[int], first: date, last: date, timezone: str) -> Window:
        start, end = calendar.days_as_utc(first, last, timezone)
        return cls(organization_id, tuple(user_ids), first, last, start, end)


@dataclass
class Value:
    count: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, amount: Decimal | None, currency: str | None) -> None:
        self.count += 1
        if amount is not None:
            key = currency or "CNY"
            self.amounts[key] = self.amounts.get(key, Decimal("0")) + amount

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "amounts": {cur: f"{amount:.2f}" for cur, amount in sorted(self.amounts.items())}}


Compute = Callable[[Session, Window], dict[int, Value]]


@dataclass(frozen=True)
class Figure:
    key: str
    label_en: str
    label_zh: str
    has_amount: bool
    compute: Compute


FIGURES: list[Figure] = []


def figure(key: str, *, label_en: str, label_zh: str, has_amount: bool = False) -> Callable[[Compute], Compute]:
    """Register a figure (in the order shown on a report)."""

    def register(compute: Compute) -> Compute:
        FIGURES.append(Figure(key, label_en, label_zh, has_amount, compute))
        return compute

    return register


def _counts(session: Session, rows: Any) -> dict[int, Value]:
    values: dict[int, Value] = {}
    for row in session.execute(rows):
        values.setdefault(row[0], Value()).add(*(tuple(row[1:3]) if len(row) > 1 else (None, None)))
    return values


def _in(column: Any, window: Window) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = column.in_(window.user_ids)
    return clause


def _activities(kind: ActivityKind) -> Compute:
    def compute(session: Session, window: Window) -> dict[int, Value]:
        return _counts(
            session,
            select(Activity.user_id).where(
                tenant_clause(window.organization_id, Activity),
                _in(Activity.user_id, window),
                Activity.kind == kind,
                Activity.occurred_at >= window.start,
                Activity.occurred_at < window.end,
            ),
        )

    return compute


figure("visits", label_en="Visits", label_zh="拜访")(_activities(ActivityKind.VISIT))


@figure("check_ins", label_en="Visit check-ins", label_zh="外勤签到")
def check_ins(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(CheckIn.user_id).where(
            tenant_clause(window.organization_id, CheckIn),
            _in(CheckIn.user_id, window),
            CheckIn.checked_in_at >= window.start,
            CheckIn.checked_in_at < window.end,
        ),
    )


figure("calls", label_en="Calls", label_zh="电话")(_activities(ActivityKind.CALL))


@figure("new_leads", label_en="New leads", label_zh="新增线索")
def new_leads(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(Lead.owner_id).where(
            tenant_clause(window.organization_id, Lead),
            _in(Lead.owner_id, window),
            Lead.created_at >= window.start,
            Lead.created_at < window.end,
        ),
    )


@figure("new_accounts", label_en="New accounts", label_zh="新增客户")
def new_accounts(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(Account.owner_id).where(
            tenant_clause(window.organization_id, Account),
            _in(Account.owner_id, window),
            Account.created_at >= window.start,
            Account.created_at < window.end,
        ),
    )


@figure("opportunities_created", label_en="Opportunities created", label_zh="新建商机", has_amount=True)
def opportunities_created(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(Opportunity.owner_id, Opportunity.amount, Opportunity.currency).where(
            tenant_clause(window.organization_id, Opportunity),
            _in(Opportunity.owner_id, window),
            Opportunity.opened_at >= window.start,
            Opportunity.opened_at < window.end,
        ),
    )


@figure("opportunities_advanced", label_en="Opportunities advanced", label_zh="推进商机", has_amount=True)
def opportunities_advanced(session: Session, window: Window) -> dict[int, Value]:
    """Open opportunities moved to a later open stage in the period (each counted once)."""
    rows = session.execute(
        select(Opportunity.owner_id, Opportunity.id, Opportunity.amount, Opportunity.currency, StageChange.from_stage,
               StageChange.to_stage)
        .join(StageChange, StageChange.opportunity_id == Opportunity.id)
        .where(
            tenant_clause(window.organization_id, Opportunity),
            tenant_clause(window.organization_id, StageChange),
            _in(Opportunity.owner_id, window),
            StageChange.changed_at >= window.start,
            StageChange.changed_at < window.end,
            StageChange.from_stage.is_not(None),
        )
    ).all()  # fmt: skip
    values: dict[int, Value] = {}
    counted: set[int] = set()
    for owner_id, opportunity_id, amount, currency, from_stage, to_stage in rows:
        before = _OPEN_ORDER.get(from_stage) if from_stage is not None else None
        after = _OPEN_ORDER.get(to_stage)
        if owner_id is None or before is None or after is None or after <= before or opportunity_id in counted:
            continue
        counted.add(opportunity_id)
        values.setdefault(owner_id, Value()).add(amount, currency)
    return values


@figure("opportunities_won", label_en="Opportunities won", label_zh="赢单", has_amount=True)
def opportunities_won(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(Opportunity.owner_id, Opportunity.amount, Opportunity.currency).where(
            tenant_clause(window.organization_id, Opportunity),
            _in(Opportunity.owner_id, window),
            Opportunity.stage == Stage.WON,
            Opportunity.closed_at >= window.start,
            Opportunity.closed_at < window.end,
        ),
    )


@figure("contracts_signed", label_en="Contracts signed", label_zh="签约合同", has_amount=True)
def contracts_signed(session: Session, window: Window) -> dict[int, Value]:
    return _counts(
        session,
        select(Contract.owner_id, Contract.amount, Contract.currency).where(
            tenant_clause(window.organization_id, Contract),
            _in(Contract.owner_id, window),
            Contract.signed_on >= window.first,
            Contract.signed_on <= window.last,
        ),
    )


def compute(session: Session, window: Window) -> dict[int, dict[str, dict[str, Any]]]:
    """Every registered figure for every person of the window: user id → key → ``{count, amounts}``."""
    result: dict[int, dict[str, dict[str, Any]]] = {user_id: {} for user_id in window.user_ids}
    for item in FIGURES:
        found = item.compute(session, window)
        for user_id in window.user_ids:
            result[user_id][item.key] = found.get(user_id, Value()).as_json()
    return result


def totals(session: Session, window: Window) -> dict[str, dict[str, Any]]:
    """Every figure summed over the window's people (a team's day or week)."""
    summed: dict[str, Value] = {}
    for per_person in compute(session, window).values():
        for key, value in per_person.items():
            total = summed.setdefault(key, Value())
            total.count += value["count"]
            for currency, amount in value["amounts"].items():
                total.amounts[currency] = total.amounts.get(currency, Decimal("0")) + Decimal(amount)
    return {key: value.as_json() for key, value in summed.items()}


__all__ = ["FIGURES", "Figure", "Value", "Window", "compute", "figure", "totals"]
