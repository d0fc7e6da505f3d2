"""Targets, attainment and leaderboards (CN-6, 目标/达成/排行榜).

The actual figures come from the records with one grouped query per metric and period
(:func:`actuals`): contract amount of contracts signed in the period (active or completed),
approved collections received in it, accounts created in it and visits (activities of kind
``visit``) made in it — attributed to the contract's, account's or activity's owner. A
department's figure is its members' and its sub-departments' members' together; the company's
is everyone's.

Who sees what: ``targets:read`` shows the company's and every department's attainment (aggregate
figures) and the personal attainment of people within the caller's row scope. Leaderboards rank
only records within the caller's row scope, so a rep's board holds their own line, a manager's
their team's. ``targets:manage`` (sales ops) sets targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.cash.models import Collection, CollectionStatus
from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ActivityKind, ContractStatus
from closeloop.db.scope import tenant_clause, visibility_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org.models import Department, User
from closeloop.targets.models import Metric, Target, TargetScope

ZERO = Decimal("0")
MONEY_METRICS = frozenset({Metric.CONTRACT_AMOUNT, Metric.COLLECTIONS})


@dataclass(frozen=True)
class Period:
    year: int
    month: int = 0  # 0: the whole year

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2100:
            raise ValidationFailed.one("year", "must be 2000 to 2100", "out_of_range")
        if not 0 <= self.month <= 12:
            raise ValidationFailed.one("month", "must be 1 to 12, or 0 for the whole year", "out_of_range")

    @property
    def start(self) -> date:
        return date(self.year, self.month or 1, 1)

    @property
    def end(self) -> date:
        """The first day after the period."""
        if self.month in (0, 12):
            return date(self.year + 1, 1, 1)
        return date(self.year, self.month + 1, 1)

    @property
    def label(self) -> str:
        return f"{self.year}" if not self.month else f"{self.year}-{self.month:02d}"


def _moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _metric_query(actor: Actor, metric: Metric, period: Period, *, scoped: bool) -> Any:
    """SELECT (owner id, figure) grouped by owner: the whole organization, or (``scoped``) only
    records within the actor's row scope."""
    org = actor.organization_id
    start, end = period.start, period.end
    metric = Metric(metric)
    if metric is Metric.CONTRACT_AMOUNT:
        where = visibility_clause(actor, Contract) if scoped else tenant_clause(org, Contract)
        return (
            select(Contract.owner_id, func.sum(Contract.amount))
            .where(
                where,
                Contract.status.in_((ContractStatus.ACTIVE, ContractStatus.COMPLETED)),
                Contract.signed_on >= start,
                Contract.signed_on < end,
            )
            .group_by(Contract.owner_id)
        )
    if metric is Metric.COLLECTIONS:
        where = visibility_clause(actor, Contract) if scoped else tenant_clause(org, Contract)
        return (
            select(Contract.owner_id, func.sum(Collection.amount))
            .join(Contract, Contract.id == Collection.contract_id)
            .where(
                tenant_clause(org, Collection),
                where,
                Collection.status == CollectionStatus.APPROVED,
                Collection.received_on >= start,
                Collection.received_on < end,
            )
            .group_by(Contract.owner_id)
        )
    if metric is Metric.NEW_ACCOUNTS:
        where = visibility_clause(actor, Account) if scoped else tenant_clause(org, Account)
        return (
            select(Account.owner_id, func.count())
            .where(where, Account.created_at >= _moment(start), Account.created_at < _moment(end))
            .group_by(Account.owner_id)
        )
    where = visibility_clause(actor, Activity) if scoped else tenant_clause(org, Activity)
    return (
        select(Activity.user_id, func.count())
        .where(
            where,
            Activity.kind == ActivityKind.VISIT,
            Activity.occurred_at >= _moment(start),
            Activity.occurred_at < _moment(end),
        )
        .group_by(Activity.user_id)
    )


def actuals(session: Session, actor: Actor, metric: Metric, period: Period, *, scoped: bool) -> dict[int, Decimal]:
    """The figure per owner (user id) for the metric and period — one grouped query."""
    rows = session.execute(_metric_query(actor, metric, period, scoped=scoped))
    return {int(owner): Decimal(value or 0) for owner, value in rows if owner is not None}


def _users(session: Session, organization_id: int) -> dict[int, tuple[str, int | None]]:
    rows = session.execute(
        select(User.id, User.display_name, User.department_id).where(tenant_clause(organization_id, User))
    )
    return {int(row[0]): (row[1], row[2]) for row in rows}


def _departments(session: Session, organization_id: int) -> dict[int, tuple[str, int | None]]:
    rows = session.execute(
        select(Department.id, Department.name, Department.parent_id).where(tenant_clause(organization_id, Department))
    )
    return {int(row[0]): (row[1], row[2]) for row in rows}


def _subtree(departments: dict[int, tuple[str, int | None]], root: int) -> set[int]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for department_id, (_, parent_id) in departments.items():
        children[parent_id].append(department_id)
    found, stack = set(), [root]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children[current])
    return found


def _members(users: dict[int, tuple[str, int | None]], department_ids: Iterable[int]) -> set[int]:
    wanted = set(department_ids)
    return {user_id for user_id, (_, department_id) in users.items() if department_id in wanted}


# --- targets ------------------------------------------------------------------------------------


def serialize_target(target: Target) -> dict[str, Any]:
    return {
        "id": target.id,
        "scope": str(target.scope),
        "department_id": target.department_id,
        "user_id": target.user_id,
        "metric": str(target.metric),
        "year": target.year,
        "month": target.month or None,
        "value": str(target.value),
        "version": target.version,
    }


def set_target(
    session: Session,
    actor: Actor,
    *,
    scope: TargetScope,
    metric: Metric,
    year: int,
    month: int | None,
    value: Decimal,
    department_id: int | None = None,
    user_id: int | None = None,
) -> Target:
    """Set (create or replace) the target of a subject for a metric and period."""
    require(actor, "targets:manage")
    period = Period(year, month or 0)
    if value < 0:
        raise ValidationFailed.one("value", "must be 0 or more", "out_of_range")
    if metric not in MONEY_METRICS and value != value.to_integral_value():
        raise ValidationFailed.one("value", "a count target is a whole number", "invalid")
    org = actor.organization_id
    if scope is TargetScope.COMPANY:
        key, department_id, user_id = "company", None, None
    elif scope is TargetScope.DEPARTMENT:
        if (
            department_id is None
            or session.scalar(
                select(Department.id).where(tenant_clause(org, Department), Department.id == department_id)
            )
            is None
        ):
            raise ValidationFailed.one("department_id", "no such department in your organization", "not_found")
        key, user_id = f"department:{department_id}", None
    else:
        if (
            user_id is None
            or session.scalar(select(User.id).where(tenant_clause(org, User), User.id == user_id)) is None
        ):
            raise ValidationFailed.one("user_id", "no such user in your organization", "not_found")
        key, department_id = f"user:{user_id}", None
    target = session.scalar(
        select(Target).where(
            tenant_clause(org, Target),
            Target.subject_key == key,
            Target.metric == metric,
            Target.year == period.year,
            Target.month == period.month,
        )
    )
    before = {"value": target.value} if target else {}
    if target is None:
        target = Target(
            organization_id=org,
            scope=scope,
            subject_key=key,
            department_id=department_id,
            user_id=user_id,
            metric=metric,
            year=period.year,
            month=period.month,
            value=value,
        )
        session.add(target)
    else:
        target.value = value
    session.flush()
    audit.record(
        session,
        actor,
        "target.set",
        subject_type="target",
        subject_id=target.id,
        changes=audit.diff(before, {"subject": key, "metric": str(metric), "period": period.label, "value": value}),
    )
    return target


def delete_target(session: Session, actor: Actor, *, target_id: int) -> None:
    require(actor, "targets:manage")
    target = session.scalar(select(Target).where(tenant_clause(actor.organization_id, Target), Target.id == target_id))
    if target is None:
        raise NotFound("target", target_id)
    audit.record(
        session,
        actor,
        "target.deleted",
        subject_type="target",
        subject_id=target.id,
        changes={"value": [str(target.value), None]},
    )
    session.delete(target)
    session.flush()


@dataclass(frozen=True)
class Attainment:
    target: Target
    subject: str
    actual: Decimal

    @property
    def ratio(self) -> Decimal | None:
        if not self.target.value:
            return None
        return (self.actual / self.target.value * 100).quantize(Decimal("0.1"))

    def as_dict(self) -> dict[str, Any]:
        return {
            **serialize_target(self.target),
            "subject": self.subject,
            "actual": str(self.actual),
            "attainment_percent": str(self.ratio) if self.ratio is not None else None,
        }


def _may_see_person(actor: Actor, user_id: int | None) -> bool:
    return user_id is not None and (
        actor.scope is RowScope.ALL or user_id == actor.user_id or user_id in actor.owner_ids
    )


def attainment(
    session: Session,
    actor: Actor,
    *,
    year: int,
    month: int | None = None,
    only: Iterable[str] | None = None,
) -> list[Attainment]:
    """Each target of the period the caller may see, with the figure reached so far. ``only``
    narrows to subject keys ("company", "department:3", "user:9")."""
    require(actor, "targets:read")
    period = Period(year, month or 0)
    org = actor.organization_id
    statement = select(Target).where(
        tenant_clause(org, Target), Target.year == period.year, Target.month == period.month
    )
    if only is not None:
        statement = statement.where(Target.subject_key.in_(list(only)))
    targets = [
        t
        for t in session.scalars(statement.order_by(Target.scope, Target.subject_key, Target.metric))
        if t.scope != TargetScope.USER or _may_see_person(actor, t.user_id)
    ]
    if not targets:
        return []
    users = _users(session, org)
    departments = _departments(session, org)
    figures = {
        metric: actuals(session, actor, metric, period, scoped=False) for metric in {Metric(t.metric) for t in targets}
    }
    result = []
    for target in targets:
        by_owner = figures[Metric(target.metric)]
        if target.scope == TargetScope.COMPANY:
            subject, actual = "company", sum(by_owner.values(), ZERO)
        elif target.scope == TargetScope.DEPARTMENT:
            members = _members(users, _subtree(departments, int(target.department_id or 0)))
            subject = departments.get(int(target.department_id or 0), ("?", None))[0]
            actual = sum((by_owner.get(u, ZERO) for u in members), ZERO)
        else:
            subject = users.get(int(target.user_id or 0), ("?", None))[0]
            actual = by_owner.get(int(target.user_id or 0), ZERO)
        result.append(Attainment(target, subject, actual))
    return result


def my_attainment(session: Session, actor: Actor, *, year: int, month: int | None = None) -> list[Attainment]:
    """The caller's own targets and their department's, for the home page."""
    keys = [f"user:{actor.user_id}"]
    if actor.user_id is not None:
        department_id = session.scalar(
            select(User.department_id).where(tenant_clause(actor.organization_id, User), User.id == actor.user_id)
        )
        if department_id is not None:
            keys.append(f"department:{department_id}")
    return attainment(session, actor, year=year, month=month, only=keys)


@dataclass(frozen=True)
class Standing:
    rank: int
    subject_id: int
    name: str
    value: Decimal
    target: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        percent = (self.value / self.target * 100).quantize(Decimal("0.1")) if self.target else None
        return {
            "rank": self.rank,
            "id": self.subject_id,
            "name": self.name,
            "value": str(self.value),
            "target": str(self.target) if self.target is not None else None,
            "attainment_percent": str(percent) if percent is not None else None,
        }


def leaderboard(
    session: Session, actor: Actor, *, metric: Metric, year: int, month: int | None = None, by: str = "user"
) -> list[Standing]:
    """People (``by="user"``) or departments (``by="department"``, members of sub-departments
    counted in their own department only) ranked by the metric, over records within the caller's
    row scope. Equal figures share a rank."""
    require(actor, "targets:read")
    if by not in ("user", "department"):
        raise ValidationFailed.one("by", "is user or department", "invalid")
    period = Period(year, month or 0)
    org = actor.organization_id
    by_owner = actuals(session, actor, metric, period, scoped=True)
    users = _users(session, org)
    key_prefix = "user" if by == "user" else "department"
    targets = {
        t.subject_key: t.value
        for t in session.scalars(
            select(Target).where(
                tenant_clause(org, Target),
                Target.metric == metric,
                Target.year == period.year,
                Target.month == period.month,
                Target.scope == (TargetScope.USER if by == "user" else TargetScope.DEPARTMENT),
            )
        )
    }
    totals: dict[int, Decimal] = defaultdict(lambda: ZERO)
    names: dict[int, str] = {}
    if by == "user":
        for owner, value in by_owner.items():
            if owner in users:
                totals[owner] += value
                names[owner] = users[owner][0]
    else:
        departments = _departments(session, org)
        for owner, value in by_owner.items():
            department_id = users.get(owner, ("", None))[1]
            if department_id is not None:
                totals[department_id] += value
                names[department_id] = departments[department_id][0]
    ordered = sorted(totals.items(), key=lambda item: (-item[1], names[item[0]]))
    standings: list[Standing] = []
    for position, (subject_id, value) in enumerate(ordered, start=1):
        rank = standings[-1].rank if standings and standings[-1].value == value else position
        standings.append(
            Standing(rank, subject_id, names[subject_id], value, targets.get(f"{key_prefix}:{subject_id}"))
        )
    return standings
