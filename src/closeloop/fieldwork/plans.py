"""Visit plans (拜访计划) per rep and day, plan against done, the customer map's points and the
visits-per-rep report.

A planned account counts as *done* when its rep checked in on a visit to it that same local day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import FieldProblem, NotFound, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.fieldwork.models import CheckIn, VisitPlan, VisitPlanItem
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org.models import User

MAX_PLAN_ITEMS = 30
MAP_POINT_LIMIT = 5000


@dataclass(frozen=True)
class PlannedStop:
    account_id: int
    note: str | None = None


@dataclass(frozen=True)
class PlanRow:
    position: int
    account_id: int
    account_name: str
    note: str | None
    check_in_id: int | None
    is_far: bool

    @property
    def is_done(self) -> bool:
        return self.check_in_id is not None


def people_in_reach(session: Session, actor: Actor) -> list[User]:
    """The active people whose plans, visits and reports the actor may see (itself included)."""
    statement = select(User).where(tenant_clause(actor.organization_id, User), User.is_active.is_(True))
    if actor.scope is not RowScope.ALL:
        statement = statement.where(User.id.in_(sorted(actor.owner_ids)))
    return list(session.scalars(statement.order_by(User.display_name, User.id)))


def person_in_reach(session: Session, actor: Actor, user_id: int) -> User:
    if actor.scope is not RowScope.ALL and user_id not in actor.owner_ids:
        raise NotFound("user", user_id)
    user = session.scalar(select(User).where(tenant_clause(actor.organization_id, User), User.id == user_id))
    if user is None:
        raise NotFound("user", user_id)
    return user


def _plan(session: Session, actor: Actor, user_id: int, day: date) -> VisitPlan | None:
    return session.scalar(
        visible(actor, VisitPlan, access=RowAccess.READ).where(VisitPlan.user_id == user_id, VisitPlan.plan_date == day)
    )


def set_plan(session: Session, actor: Actor, *, user_id: int, day: date, stops: Sequence[PlannedStop]) -> VisitPlan:
    """Replace the rep's plan for ``day`` with ``stops`` in their order (the rep, or a manager
    for their team). Every account must be one the actor sees, and appear once."""
    require(actor, "fieldwork:plan")
    person_in_reach(session, actor, user_id)
    if len(stops) > MAX_PLAN_ITEMS:
        raise ValidationFailed.one("items", f"at most {MAX_PLAN_ITEMS} visits a day", "too_many")
    ids = [stop.account_id for stop in stops]
    problems: list[FieldProblem] = []
    seen: set[int] = set()
    found = set(
        session.scalars(
            visible(actor, Account, access=RowAccess.READ).with_only_columns(Account.id).where(Account.id.in_(ids))
        )
    )
    for index, account_id in enumerate(ids):
        if account_id in seen:
            problems.append(FieldProblem(f"items[{index}].account_id", "is planned twice", "duplicate"))
        elif account_id not in found:
            problems.append(FieldProblem(f"items[{index}].account_id", "is not an account you can see", "not_found"))
        seen.add(account_id)
    if problems:
        raise ValidationFailed(problems)
    plan = _plan(session, actor, user_id, day)
    before = [] if plan is None else plan_account_ids(session, actor, plan)
    if plan is None:
        plan = VisitPlan(
            organization_id=actor.organization_id, user_id=user_id, plan_date=day, created_by_id=actor.user_id
        )
        session.add(plan)
        session.flush()
    else:
        session.execute(
            delete(VisitPlanItem).where(
                tenant_clause(actor.organization_id, VisitPlanItem), VisitPlanItem.plan_id == plan.id
            )
        )
        plan.created_by_id = plan.created_by_id or actor.user_id
        session.flush()
    session.add_all(
        VisitPlanItem(
            organization_id=actor.organization_id,
            plan_id=plan.id,
            account_id=stop.account_id,
            position=position,
            note=(stop.note or "").strip() or None,
        )
        for position, stop in enumerate(stops, start=1)
    )
    session.flush()
    audit.record(
        session,
        actor,
        "visit_plan.set",
        subject_type="visit_plan",
        subject_id=plan.id,
        changes={"user_id": [None, user_id], "plan_date": [None, day.isoformat()], "accounts": [before, ids]},
    )
    return plan


def plan_account_ids(session: Session, actor: Actor, plan: VisitPlan) -> list[int]:
    return list(
        session.scalars(
            select(VisitPlanItem.account_id)
            .where(tenant_clause(actor.organization_id, VisitPlanItem), VisitPlanItem.plan_id == plan.id)
            .order_by(VisitPlanItem.position)
        )
    )


def plan_rows(session: Session, actor: Actor, *, user_id: int, day: date) -> tuple[VisitPlan | None, list[PlanRow]]:
    """The rep's plan for ``day`` with each stop's check-in of that day (plan against done)."""
    require(actor, "fieldwork:read")
    person_in_reach(session, actor, user_id)
    plan = _plan(session, actor, user_id, day)
    if plan is None:
        return None, []
    start, end = calendar.days_as_utc(day, day, settings.business_timezone)
    done = (
        select(
            CheckIn.account_id,
            func.min(CheckIn.id).label("check_in_id"),
            func.max(case((CheckIn.is_far, 1), else_=0)).label("far"),
        )
        .where(
            tenant_clause(actor.organization_id, CheckIn),
            CheckIn.user_id == user_id,
            CheckIn.checked_in_at >= start,
            CheckIn.checked_in_at < end,
        )
        .group_by(CheckIn.account_id)
        .subquery()
    )
    rows = session.execute(
        select(VisitPlanItem.position, Account.id, Account.name, VisitPlanItem.note, done.c.check_in_id, done.c.far)
        .join(Account, and_(Account.id == VisitPlanItem.account_id, tenant_clause(actor.organization_id, Account)))
        .outerjoin(done, done.c.account_id == VisitPlanItem.account_id)
        .where(tenant_clause(actor.organization_id, VisitPlanItem), VisitPlanItem.plan_id == plan.id)
        .order_by(VisitPlanItem.position)
    ).all()
    return plan, [PlanRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


def plan_body(plan: VisitPlan | None, rows: Sequence[PlanRow], *, user_id: int, day: date) -> dict[str, Any]:
    return {
        "id": plan.id if plan else None,
        "user_id": user_id,
        "plan_date": day.isoformat(),
        "version": plan.version if plan else None,
        "planned": len(rows),
        "done": sum(1 for row in rows if row.is_done),
        "items": [
            {
                "position": row.position,
                "account_id": row.account_id,
                "account_name": row.account_name,
                "note": row.note,
                "done": row.is_done,
                "check_in_id": row.check_in_id,
                "is_far": row.is_far,
            }
            for row in rows
        ],
    }


def map_points(
    session: Session, actor: Actor, *, owner_id: int | None = None, region_id: int | None = None
) -> list[dict[str, Any]]:
    """Accounts the actor sees that have coordinates, for the customer map (at most 5,000)."""
    require(actor, "fieldwork:read")
    require(actor, "accounts:read")
    statement = visible(actor, Account, access=RowAccess.READ).where(
        Account.latitude.is_not(None), Account.longitude.is_not(None)
    )
    if owner_id is not None:
        statement = statement.where(Account.owner_id == owner_id)
    if region_id is not None:
        statement = statement.where(Account.region_id == region_id)
    rows = session.execute(
        statement.with_only_columns(
            Account.id, Account.name, Account.latitude, Account.longitude, Account.owner_id, Account.region_id,
            Account.tier, Account.city,
        ).order_by(Account.id).limit(MAP_POINT_LIMIT)
    ).all()  # fmt: skip
    return [
        {
            "id": r[0], "name": r[1], "latitude": r[2], "longitude": r[3], "owner_id": r[4], "region_id": r[5],
            "tier": r[6], "city": r[7],
        }
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class RepVisits:
    user_id: int
    name: str
    planned: int
    planned_done: int
    visits: int
    checked_in: int
    far: int


def visit_report(session: Session, actor: Actor, *, first: date, last: date) -> list[RepVisits]:
    """Per person in reach, over the local days ``first`` … ``last``: planned stops, those done,
    visit activities, check-ins and far-away check-ins."""
    require(actor, "fieldwork:read")
    if last < first:
        raise ValidationFailed.one("to", "is before from", "invalid_range")
    if (last - first).days > 366:
        raise ValidationFailed.one("to", "the period is longer than a year", "invalid_range")
    people = people_in_reach(session, actor)
    ids = [person.id for person in people]
    start, end = calendar.days_as_utc(first, last, settings.business_timezone)
    org = actor.organization_id
    planned = dict(
        session.execute(
            select(VisitPlan.user_id, func.count(VisitPlanItem.id))
            .join(VisitPlanItem, and_(VisitPlanItem.plan_id == VisitPlan.id, tenant_clause(org, VisitPlanItem)))
            .where(
                tenant_clause(org, VisitPlan),
                VisitPlan.user_id.in_(ids),
                VisitPlan.plan_date >= first,
                VisitPlan.plan_date <= last,
            )
            .group_by(VisitPlan.user_id)
        ).all()
    )
    checks = {
        row[0]: (row[1], row[2] or 0)
        for row in session.execute(
            select(CheckIn.user_id, func.count(CheckIn.id), func.sum(case((CheckIn.is_far, 1), else_=0)))
            .where(
                tenant_clause(org, CheckIn),
                CheckIn.user_id.in_(ids),
                CheckIn.checked_in_at >= start,
                CheckIn.checked_in_at < end,
            )
            .group_by(CheckIn.user_id)
        ).all()
    }
    visits = dict(
        session.execute(
            select(Activity.user_id, func.count(Activity.id))
            .where(
                tenant_clause(org, Activity),
                Activity.user_id.in_(ids),
                Activity.kind == ActivityKind.VISIT,
                Activity.occurred_at >= start,
                Activity.occurred_at < end,
            )
            .group_by(Activity.user_id)
        ).all()
    )
    done = _planned_done(session, org, ids, first, last)
    return [
        RepVisits(
            user_id=person.id,
            name=person.display_name,
            planned=int(planned.get(person.id, 0)),
            planned_done=done.get(person.id, 0),
            visits=int(visits.get(person.id, 0)),
            checked_in=int(checks.get(person.id, (0, 0))[0]),
            far=int(checks.get(person.id, (0, 0))[1]),
        )
        for person in people
    ]


def _planned_done(session: Session, organization_id: int, ids: list[int], first: date, last: date) -> dict[int, int]:
    """Planned stops with a check-in by the same rep at the same account on the plan's local day."""
    start, end = calendar.days_as_utc(first, last, settings.business_timezone)
    timezone = settings.business_timezone
    checked = {
        (row[0], row[1], calendar.local_date(row[2], timezone))
        for row in session.execute(
            select(CheckIn.user_id, CheckIn.account_id, CheckIn.checked_in_at).where(
                tenant_clause(organization_id, CheckIn),
                CheckIn.user_id.in_(ids),
                CheckIn.checked_in_at >= start,
                CheckIn.checked_in_at < end,
            )
        )
    }
    done: dict[int, int] = {}
    for user_id, account_id, day in session.execute(
        select(VisitPlan.user_id, VisitPlanItem.account_id, VisitPlan.plan_date)
        .join(VisitPlanItem, and_(VisitPlanItem.plan_id == VisitPlan.id, tenant_clause(organization_id, VisitPlanItem)))
        .where(
            tenant_clause(organization_id, VisitPlan),
            VisitPlan.user_id.in_(ids),
            VisitPlan.plan_date >= first,
            VisitPlan.plan_date <= last,
        )
    ):
        if (user_id, account_id, day) in checked:
            done[user_id] = done.get(user_id, 0) + 1
    return done
