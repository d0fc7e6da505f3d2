"""Data-quality KPIs per owner, team, region and organization, snapshotted at every scan.

Per group: completeness (share of contacts, accounts and open opportunities without a required field
missing: a contact's mobile phone, an account's industry, a late-stage opportunity's amount),
contact-title freshness (share of contacts whose title was confirmed within the
threshold), stage-log completeness (share of open opportunities with a stage move or an activity
within the threshold), duplicate rate (share of accounts flagged as possible duplicates) and the
open defects of each rule. A record counts for its owner; a team is a manager and everyone
reporting to them, directly or not; a region is the owners whose user belongs to it; the
organization counts every record, owned or not. One snapshot row per group per scan gives the
history that scorecards plot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import Forbidden, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import OPEN_STAGES
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.governance.permissions import require
from closeloop.org.models import Region, User
from closeloop.quality.models import Defect, KpiSnapshot

GROUPS = ("owner", "team", "region", "organization")
_COUNTS = (
    "contacts",
    "title_stale",
    "open_opportunities",
    "stage_stale",
    "accounts",
    "duplicate_accounts",
    "incomplete",
)
_RULE_OF = {
    "title_stale": "contact_title_stale",
    "stage_stale": "opportunity_stage_stale",
    "duplicate_accounts": "account_duplicate",
}
#: the rules of a required field left empty, one per record type (so their counts add up to records)
COMPLETENESS_RULES = ("contact_mobile_missing", "account_industry_missing", "opportunity_amount_missing")

Metrics = dict[str, Any]


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def finish(counts: Metrics) -> Metrics:
    """Counts with the three KPIs computed from them."""
    metrics = dict(counts)
    records = counts["contacts"] + counts["accounts"] + counts["open_opportunities"]
    metrics["completeness"] = _ratio(records - counts["incomplete"], records)
    metrics["title_freshness"] = _ratio(counts["contacts"] - counts["title_stale"], counts["contacts"])
    metrics["stage_log_completeness"] = _ratio(
        counts["open_opportunities"] - counts["stage_stale"], counts["open_opportunities"]
    )
    metrics["duplicate_rate"] = _ratio(counts["duplicate_accounts"], counts["accounts"])
    metrics["defects_total"] = sum(counts["defects"].values())
    return metrics


def _empty() -> Metrics:
    return {**dict.fromkeys(_COUNTS, 0), "defects": {}}


def _add(into: Metrics, other: Metrics) -> None:
    for name in _COUNTS:
        into[name] += other[name]
    for rule, count in other["defects"].items():
        into["defects"][rule] = into["defects"].get(rule, 0) + count


def counts_by_owner(session: Session, organization_id: int) -> dict[int | None, Metrics]:
    """The raw counts of every owner (``None``: records without an owner)."""
    by_owner: dict[int | None, Metrics] = defaultdict(_empty)
    open_stages = [stage.value for stage in OPEN_STAGES]
    queries = {
        "contacts": select(Contact.owner_id, func.count()).where(tenant_clause(organization_id, Contact)),
        "accounts": select(Account.owner_id, func.count()).where(tenant_clause(organization_id, Account)),
        "open_opportunities": select(Opportunity.owner_id, func.count()).where(
            tenant_clause(organization_id, Opportunity), Opportunity.stage.in_(open_stages)
        ),
    }
    for name, statement in queries.items():
        for owner_id, count in session.execute(statement.group_by(statement.selected_columns[0])):
            by_owner[owner_id][name] = int(count)
    defects = session.execute(
        select(Defect.owner_id, Defect.rule, func.count())
        .where(tenant_clause(organization_id, Defect), Defect.resolved_at.is_(None))
        .group_by(Defect.owner_id, Defect.rule)
    )
    for owner_id, rule, count in defects:
        metrics = by_owner[owner_id]
        metrics["defects"][rule] = int(count)
        for name, rule_id in _RULE_OF.items():
            if rule == rule_id:
                metrics[name] = int(count)
        if rule in COMPLETENESS_RULES:
            metrics["incomplete"] += int(count)
    return dict(by_owner)


def teams(users: Iterable[Any]) -> dict[int, set[int]]:
    """Each manager's team: themselves and everyone reporting to them, directly or not."""
    reports: dict[int, list[int]] = defaultdict(list)
    for user in users:
        if user.manager_id is not None:
            reports[user.manager_id].append(user.id)
    teams: dict[int, set[int]] = {}
    for manager in reports:
        members, stack = {manager}, [manager]
        while stack:
            for member in reports.get(stack.pop(), ()):
                if member not in members:
                    members.add(member)
                    stack.append(member)
        teams[manager] = members
    return teams


def compute(session: Session, organization_id: int) -> dict[str, dict[int | None, Metrics]]:
    """KPIs of every group, by grouping (``owner``, ``team``, ``region``, ``organization``)."""
    by_owner = counts_by_owner(session, organization_id)
    users = session.execute(
        select(User.id, User.manager_id, User.region_id).where(tenant_clause(organization_id, User))
    ).all()
    groups: dict[str, dict[int | None, Metrics]] = {name: {} for name in GROUPS}
    for user in users:
        groups["owner"][user.id] = finish(by_owner.get(user.id, _empty()))
    for manager, members in teams(users).items():
        total = _empty()
        for member in members:
            if member in by_owner:
                _add(total, by_owner[member])
        groups["team"][manager] = finish(total)
    regions: dict[int, Metrics] = defaultdict(_empty)
    region_of = {user.id: user.region_id for user in users}
    for owner_id, metrics in by_owner.items():
        region_id = region_of.get(owner_id) if owner_id is not None else None
        if region_id is not None:
            _add(regions[region_id], metrics)
    for region_id in session.scalars(select(Region.id).where(tenant_clause(organization_id, Region))):
        groups["region"][region_id] = finish(regions.get(region_id, _empty()))
    everything = _empty()
    for metrics in by_owner.values():
        _add(everything, metrics)
    groups["organization"][None] = finish(everything)
    return groups


def take_snapshots(session: Session, organization_id: int, *, scan_id: int, now: datetime) -> int:
    """Write one snapshot row per group for this scan; the number written."""
    rows = [
        {
            "organization_id": organization_id,
            "scan_id": scan_id,
            "taken_at": now,
            "group_by": group_by,
            "group_id": group_id,
            "metrics": metrics,
        }
        for group_by, groups in compute(session, organization_id).items()
        for group_id, metrics in groups.items()
    ]
    if rows:
        session.execute(insert(KpiSnapshot), rows)
    return len(rows)


_HISTORY_KEYS = ("completeness", "title_freshness", "stage_log_completeness", "duplicate_rate", "defects_total")


def kpi_report(session: Session, actor: Actor, *, group_by: str, history: int = 12) -> list[dict[str, Any]]:
    """The latest KPIs of each group the actor may see, with up to ``history`` earlier snapshots.

    Owners and teams are limited to the actor's row scope (a rep sees their own figures, a manager
    their team's); regions and the organization need a role that sees the whole organization.
    """
    require(actor, "quality:read")
    if group_by not in GROUPS:
        raise ValidationFailed.one("group_by", f"use one of: {', '.join(GROUPS)}")
    if group_by in ("region", "organization") and actor.scope is not RowScope.ALL:
        raise Forbidden(f"Your role ({actor.role}) sees its own records only; group_by={group_by} needs more")
    scan_ids = list(
        session.scalars(
            select(KpiSnapshot.scan_id)
            .where(tenant_clause(actor.organization_id, KpiSnapshot), KpiSnapshot.group_by == group_by)
            .group_by(KpiSnapshot.scan_id)
            .order_by(KpiSnapshot.scan_id.desc())
            .limit(history + 1)
        )
    )
    if not scan_ids:
        return []
    statement = select(KpiSnapshot).where(
        tenant_clause(actor.organization_id, KpiSnapshot),
        KpiSnapshot.group_by == group_by,
        KpiSnapshot.scan_id.in_(scan_ids),
    )
    if group_by in ("owner", "team") and actor.scope is not RowScope.ALL:
        statement = statement.where(KpiSnapshot.group_id.in_(sorted(actor.owner_ids)))
    snapshots = list(session.scalars(statement.order_by(KpiSnapshot.scan_id.desc())))
    names = _group_names(session, actor.organization_id, group_by, {s.group_id for s in snapshots})
    latest = scan_ids[0]
    report: dict[int | None, dict[str, Any]] = {}
    for snapshot in snapshots:
        if snapshot.scan_id == latest:
            report[snapshot.group_id] = {
                "group_by": group_by,
                "group_id": snapshot.group_id,
                "name": names.get(snapshot.group_id),
                "scan_id": snapshot.scan_id,
                "taken_at": snapshot.taken_at,
                "metrics": snapshot.metrics,
                "history": [],
            }
    for snapshot in snapshots:
        if snapshot.group_id in report:
            report[snapshot.group_id]["history"].append(
                {
                    "scan_id": snapshot.scan_id,
                    "taken_at": snapshot.taken_at,
                    **{key: snapshot.metrics.get(key) for key in _HISTORY_KEYS},
                }
            )
    return sorted(report.values(), key=lambda item: (item["group_id"] is not None, item["group_id"] or 0))


def _group_names(session: Session, organization_id: int, group_by: str, ids: set[int | None]) -> dict[int | None, str]:
    wanted = sorted(i for i in ids if i is not None)
    if group_by == "organization":
        return {None: "organization"}
    if group_by == "region":
        rows = session.execute(
            select(Region.id, Region.name).where(tenant_clause(organization_id, Region), Region.id.in_(wanted))
        )
    else:
        rows = session.execute(
            select(User.id, User.display_name).where(tenant_clause(organization_id, User), User.id.in_(wanted))
        )
    return {row[0]: row[1] for row in rows}
