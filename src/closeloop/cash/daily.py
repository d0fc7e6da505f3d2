"""The daily collection run (CN-3): mark instalments that fell overdue, remind owners of due dates
coming within each instalment's ``remind_days``, and alert the owner and their manager of overdue
ones — each step one set-based selection, and idempotent: the instalment keeps the day it was
reminded or alerted, so a second run on the same day raises nothing.

An overdue instalment is alerted the first day it is found overdue and again every
:data:`REALERT_DAYS` days while it stays unpaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from closeloop.cash.models import Instalment
from closeloop.cash.service import collected_subquery
from closeloop.core.clock import utcnow
from closeloop.crm.contracts.models import Contract
from closeloop.db.scope import tenant_clause
from closeloop.org.models import User
from closeloop.org.notifications import Message, notify

REALERT_DAYS = 7
MAX_REMIND_DAYS = 365


@dataclass
class DailyRun:
    marked_overdue: int = 0
    reminded: int = 0
    alerted: int = 0
    notifications: int = 0


def _unpaid(organization_id: int) -> tuple[Any, ColumnElement[bool]]:
    collected = collected_subquery(organization_id)
    condition = and_(
        tenant_clause(organization_id, Instalment),
        Instalment.is_void.is_(False),
        func.coalesce(collected.c.collected, 0) < Instalment.amount,
    )
    return collected, condition


def run_daily(session: Session, organization_id: int, *, on: date | None = None) -> DailyRun:
    """One organization's run for the day ``on`` (today by the product clock)."""
    on = on or utcnow().date()
    run = DailyRun()
    collected, unpaid = _unpaid(organization_id)
    unpaid_ids = select(Instalment.id).outerjoin(collected, collected.c.instalment_id == Instalment.id).where(unpaid)
    # 1. overdue since today: one UPDATE; paid ones lose the mark
    marked = session.execute(
        update(Instalment)
        .where(
            tenant_clause(organization_id, Instalment),
            Instalment.overdue_since.is_(None),
            Instalment.due_on < on,
            Instalment.id.in_(unpaid_ids),
        )
        .values(overdue_since=on)
        .execution_options(synchronize_session=False)
    )
    run.marked_overdue = cast("CursorResult[Any]", marked).rowcount or 0
    session.execute(
        update(Instalment)
        .where(
            tenant_clause(organization_id, Instalment),
            Instalment.overdue_since.is_not(None),
            Instalment.id.not_in(unpaid_ids),
        )
        .values(overdue_since=None)
        .execution_options(synchronize_session=False)
    )
    # 2. reminders: due within remind_days from today, not yet reminded for this due date
    coming = session.execute(
        select(Instalment, Contract.number, Contract.title, Contract.owner_id)
        .join(Contract, Contract.id == Instalment.contract_id)
        .outerjoin(collected, collected.c.instalment_id == Instalment.id)
        .where(
            unpaid,
            tenant_clause(organization_id, Contract),
            Instalment.due_on >= on,
            Instalment.due_on <= on + timedelta(days=MAX_REMIND_DAYS),
            Instalment.reminded_on.is_(None),
            Contract.owner_id.is_not(None),
        )
    ).all()
    for instalment, number, title, owner_id in coming:
        if owner_id is None or instalment.due_on > on + timedelta(days=instalment.remind_days):
            continue
        days = (instalment.due_on - on).days
        message = Message(
            kind="collection_due",
            title_zh=f"合同 {number} 第 {instalment.number} 期回款 {instalment.amount} 将于 {days} 天后到期",
            title_en=f"Contract {number}: instalment {instalment.number} ({instalment.amount}) is due in {days} days",
            body_zh=f"{title} · 到期日 {instalment.due_on.isoformat()}",
            body_en=f"{title} · due {instalment.due_on.isoformat()}",
            link=f"/contracts/{instalment.contract_id}",
        )
        if notify(session, organization_id=organization_id, user_id=owner_id, message=message) is not None:
            run.notifications += 1
        instalment.reminded_on = on
        run.reminded += 1
    # 3. overdue alerts to the owner and their manager: first day overdue, then every REALERT_DAYS
    due_again = on - timedelta(days=REALERT_DAYS)
    late = session.execute(
        select(Instalment, Contract.number, Contract.title, Contract.owner_id, User.manager_id)
        .join(Contract, Contract.id == Instalment.contract_id)
        .join(User, User.id == Contract.owner_id)
        .outerjoin(collected, collected.c.instalment_id == Instalment.id)
        .where(
            unpaid,
            tenant_clause(organization_id, Contract),
            Instalment.due_on < on,
            or_(Instalment.alerted_on.is_(None), Instalment.alerted_on <= due_again),
        )
        .order_by(Instalment.id)
    ).all()
    for instalment, number, title, owner_id, manager_id in late:
        days = (on - instalment.due_on).days
        message = Message(
            kind="collection_overdue",
            title_zh=f"合同 {number} 第 {instalment.number} 期回款已逾期 {days} 天",
            title_en=f"Contract {number}: instalment {instalment.number} is {days} days overdue",
            body_zh=f"{title} · 应收 {instalment.amount} · 到期日 {instalment.due_on.isoformat()}",
            body_en=f"{title} · {instalment.amount} due {instalment.due_on.isoformat()}",
            link=f"/contracts/{instalment.contract_id}",
        )
        for user_id in dict.fromkeys(u for u in (owner_id, manager_id) if u is not None):
            if notify(session, organization_id=organization_id, user_id=user_id, message=message) is not None:
                run.notifications += 1
        instalment.alerted_on = on
        run.alerted += 1
    session.flush()
    return run
