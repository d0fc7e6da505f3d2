"""Targets, attainment and leaderboards (CN-6, 目标/达成/排行榜).

The actual figures come from the records with one grouped query per metric and period
(:func:`actuals`): contract amount of contracts signed in the period (active or completed),
approved collections received in it, accounts created in it and visits (activities of kind
``visit``) made in it — attributed to the contract's, account's or activity's owner. A
department's figure is its members' and its sub-departments' members' together; the company's
is everyone's.

Who sees which targets (``targets:read``): whoever reads every record (the sales VP, the CFO,
admins) sees all of them; a manager or director (team scope) the departments of their own
department's subtree and the people in it or reporting to them; a rep their own targets and their
own department's (their team's aggregate). Leaderboards rank only records within the caller's row
scope, so a rep's board holds their own line, a manager's their team's. ``targets:manage`` (sales
ops) sets targets.

Months and years begin at midnight in the business time zone (``settings.business_timezone``,
Asia/Shanghai by default): a visit at 2026-10-31T17:30Z is one of November's in Shanghai.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.cash.models import Collection, CollectionStatus
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import FieldProblem, NotFound, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ActivityKind, ContractStatus
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
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
    """Midnight of ``day`` in the business time zone, as a UTC instant."""
    return calendar.days_as_utc(day, day, settings.business_timezone)[0]


def _metric_query(actor: Actor, metric: Metric, period: Period, *, scoped: bool) -> Any:
    """SELECT (owner id, figure) grouped by owner: the whole organization, or (``scoped``) only
    records within the actor's row scope."""
    org = actor.organization_id
    start, end = period.start, period.end
    metric = Metric(metric)
    if metric is Metric.CONTRACT_AMOUNT:
        where = visibility_clause(actor, Contract, access=RowAccess.WRITE) if scoped else tenant_clause(org, Contract)
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
        where = visibility_clause(actor, Contract, access=RowAccess.WRITE) if scoped else tenant_clause(org, Contract)
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
        where = visibility_clause(actor, Account, access=RowAccess.WRITE) if scoped else tenant_clause(org, Account)
        return (
            select(Account.owner_id, func.count())
            .where(where, Account.created_at >= _moment(start), Account.created_at < _moment(end))
            .group_by(Account.owner_id)
        )
    where = visibility_clause(actor, Activity, access=RowAccess.WRITE) if scoped else tenant_clause(org, Activity)
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


@dataclass(frozen=True)
class Reach:
    """Which targets a reader sees: ``None`` for every department / person."""

    company: bool
    departments: frozenset[int] | None
    people: frozenset[int] | None

    def sees(self, target: Target) -> bool:
        if target.scope == TargetScope.COMPANY:
            return self.company
        if target.scope == TargetScope.DEPARTMENT:
            return self.departments is None or target.department_id in self.departments
        return self.people is None or target.user_id in self.people


def reach(
    actor: Actor,
    users: dict[int, tuple[str, int | None]],
    departments: dict[int, tuple[str, int | None]],
) -> Reach:
    """All for a reader of every record; a team reader's department subtree and the people in it
    (and those reporting to them); a rep's own targets and their own department's."""
    if actor.scope is RowScope.ALL:
        return Reach(True, None, None)
    me = actor.user_id or 0
    own_department = users.get(me, ("", None))[1]
    if actor.scope is RowScope.TEAM and own_department is not None:
        subtree = _subtree(departments, own_department)
        people = {me, *actor.owner_ids, *_members(users, subtree)}
        return Reach(False, frozenset(subtree), frozenset(people))
    if actor.scope is RowScope.TEAM:
        return Reach(False, frozenset(), frozenset({me, *actor.owner_ids}))
    return Reach(False, frozenset({own_department} if own_department is not None else ()), frozenset({me}))


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
    users = _users(session, org)
    departments = _departments(session, org)
    seen = reach(actor, users, departments)
    targets = [
        t for t in session.scalars(statement.order_by(Target.scope, Target.subject_key, Target.metric)) if seen.sees(t)
    ]
    if not targets:
        return []
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
    """People (``by="user"``) ranked by the metric over the records within the caller's row scope,
    or departments (``by="department"``, members of sub-departments counted in their own department
    only) within the caller's reach — the departments whose targets they see — each with its whole
    figure, the same figure the department's attainment counts: never a department's name over
    only the caller's part of it. Equal figures share a rank."""
    require(actor, "targets:read")
    if by not in ("user", "department"):
        raise ValidationFailed.one("by", "is user or department", "invalid")
    period = Period(year, month or 0)
    org = actor.organization_id
    by_owner = actuals(session, actor, metric, period, scoped=by == "user")
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
        visible = reach(actor, users, departments).departments
        for owner, value in by_owner.items():
            department_id = users.get(owner, ("", None))[1]
            if department_id is not None and (visible is None or department_id in visible):
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


# --- import from a file -------------------------------------------------------------------------

IMPORT_COLUMNS = ("scope", "subject", "metric", "year", "month", "value")


@dataclass(frozen=True)
class RowProblem:
    row: int  # the file's line number (the header is line 1)
    field: str
    message: str


def import_targets(session: Session, actor: Actor, rows: Iterable[dict[str, str]]) -> int:
    """Set the targets of a file's rows — ``scope`` (company / department / user), ``subject`` (empty,
    a department's name or a user's username), ``metric``, ``year``, ``month`` (empty or 0 for the
    whole year), ``value``. Every row is checked first: any problem refuses the whole file with
    every row's problems (422 whose fields are ``row N: column``), nothing set."""
    require(actor, "targets:manage")
    org = actor.organization_id
    departments = {name: int(i) for i, (name, _) in _departments(session, org).items()}
    usernames = {
        row[0]: int(row[1]) for row in session.execute(select(User.username, User.id).where(tenant_clause(org, User)))
    }
    problems: list[RowProblem] = []
    ready: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, int, int], int] = {}
    for line, row in enumerate(rows, start=2):
        found = len(problems)
        cell = {column: (row.get(column) or "").strip() for column in IMPORT_COLUMNS}
        scope = cell["scope"].lower()
        if scope not in {s.value for s in TargetScope}:
            problems.append(RowProblem(line, "scope", "is company, department or user"))
        metric = cell["metric"].lower()
        if metric not in {m.value for m in Metric}:
            problems.append(RowProblem(line, "metric", f"is one of {', '.join(m.value for m in Metric)}"))
        year = int(cell["year"]) if cell["year"].isdigit() else 0
        if not 2000 <= year <= 2100:
            problems.append(RowProblem(line, "year", "is a year from 2000 to 2100"))
        month = int(cell["month"]) if cell["month"].isdigit() else (0 if not cell["month"] else -1)
        if not 0 <= month <= 12:
            problems.append(RowProblem(line, "month", "is 1 to 12, or empty for the whole year"))
        try:
            value = Decimal(cell["value"].replace(",", ""))
            if not value.is_finite() or value < 0 or value >= Decimal("1e16"):
                raise InvalidOperation
        except InvalidOperation:
            problems.append(RowProblem(line, "value", "is a number, 0 or more"))
            value = ZERO
        if metric in {m.value for m in Metric} and Metric(metric) not in MONEY_METRICS and value % 1:
            problems.append(RowProblem(line, "value", "a count target is a whole number"))
        subject: dict[str, int | None] = {"department_id": None, "user_id": None}
        if scope == "department":
            subject["department_id"] = departments.get(cell["subject"])
            if subject["department_id"] is None:
                problems.append(RowProblem(line, "subject", f"no department named '{cell['subject']}'"))
        elif scope == "user":
            subject["user_id"] = usernames.get(cell["subject"])
            if subject["user_id"] is None:
                problems.append(RowProblem(line, "subject", f"no user '{cell['subject']}'"))
        elif scope == "company" and cell["subject"]:
            problems.append(RowProblem(line, "subject", "is empty for the company"))
        if len(problems) > found:
            continue
        key = (f"{scope}:{subject['department_id'] or subject['user_id'] or ''}", metric, year, month)
        if key in seen:
            problems.append(RowProblem(line, "subject", f"the same target as line {seen[key]}"))
            continue
        seen[key] = line
        ready.append({"scope": TargetScope(scope), "metric": Metric(metric), "year": year, "month": month or None,
                      "value": value, **subject})  # fmt: skip
    if problems:
        raise ValidationFailed(
            [FieldProblem(f"row {p.row}: {p.field}", p.message) for p in problems],
            message=f"{len(problems)} problem(s) in the file; nothing was imported",
        )
    for values in ready:
        set_target(session, actor, **values)
    return len(ready)
