"""Which owned accounts a pool's recycle rules return to the public pool — as one SQL statement.

Every rule is a condition on the account row joined to per-account statistics that the database
computes once for the whole organization (the last activity; the last opportunity opened, the last
won, how many won and open — each one grouped pass over its table), so that recycling a whole
tenant is one ``INSERT … SELECT`` into the owner-change history and one ``UPDATE accounts … WHERE
id IN (…)``, the same on SQLite and PostgreSQL — never a loop over accounts in Python. (Correlated
``EXISTS`` per rule was tried first: planners picked the date index over the account index and
the run grew with accounts × opportunities.)

The rules, for an account held since ``owned_since`` (its last claim or assignment, else its
creation); a tier may set its own days (``tier_rules``):

- protection (``protection_days``): while held for fewer days, no rule applies; once the period
  is over, an account still without a won deal since it was taken goes back;
- no follow-up (``follow_up_days``): no activity in the last N days, and held for at least N days;
- no opportunity (``opportunity_days``): no opportunity opened in the last N days (same holding);
- no deal (``deal_days``): no opportunity won in the last N days (same holding).

Never recycled: locked accounts, accounts with a won opportunity (``exempt_won``) and accounts
with an open opportunity (``exempt_open_opportunities``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, literal, or_, select, true

from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import Stage, Tier
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause
from closeloop.pools.models import RULE_FIELDS, Pool, PoolAccount

#: reason codes, in the order they are named when several rules hold
REASONS = ("protection_expired", "no_follow_up", "no_opportunity", "no_deal")


@dataclass(frozen=True)
class Thresholds:
    follow_up_days: int | None
    opportunity_days: int | None
    deal_days: int | None
    protection_days: int | None

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in RULE_FIELDS)


def thresholds(pool: Pool, tier: str | None) -> Thresholds:
    """The pool's days, with the tier's own where it sets them."""
    values: dict[str, Any] = {name: getattr(pool, name) for name in RULE_FIELDS}
    if tier is not None:
        values.update({k: v for k, v in (pool.tier_rules or {}).get(tier, {}).items() if k in RULE_FIELDS})
    return Thresholds(**values)


def in_pool_clause(pool: Pool, other_region_ids: Sequence[int]) -> ColumnElement[bool]:
    """Accounts that belong to ``pool`` (``other_region_ids``: the regions other pools take)."""
    if pool.region_ids:
        return Account.region_id.in_([int(r) for r in pool.region_ids])
    if not other_region_ids:
        return true()
    return or_(Account.region_id.is_(None), Account.region_id.not_in(list(other_region_ids)))


def _statistics(organization_id: int) -> tuple[Any, Any]:
    """Per account, computed once for the whole organization (one pass over each table, grouped):
    the last activity; the last opportunity opened, the last won, how many won and how many open."""
    activity = (
        select(Activity.account_id.label("account_id"), func.max(Activity.occurred_at).label("last_activity"))
        .where(tenant_clause(organization_id, Activity), Activity.account_id.is_not(None))
        .group_by(Activity.account_id)
        .subquery("activity_stats")
    )
    won = Opportunity.stage == Stage.WON
    is_open = Opportunity.stage.not_in([Stage.WON, Stage.LOST])
    deals = (
        select(
            Opportunity.account_id.label("account_id"),
            func.max(Opportunity.opened_at).label("last_opened"),
            func.max(case((won, Opportunity.closed_at), else_=None)).label("last_won"),
            func.sum(case((won, 1), else_=0)).label("won_count"),
            func.sum(case((is_open, 1), else_=0)).label("open_count"),
        )
        .where(tenant_clause(organization_id, Opportunity), Opportunity.account_id.is_not(None))
        .group_by(Opportunity.account_id)
        .subquery("deal_stats")
    )
    return activity, deals


def _none_since(column: Any, cutoff: Any) -> ColumnElement[bool]:
    """Nothing at or after ``cutoff`` (``column`` is the last one, NULL for none)."""
    return or_(column.is_(None), column < cutoff)


def _rules(
    limits: Thresholds, now: datetime, since: ColumnElement[Any], activity: Any, deals: Any
) -> list[tuple[str, ColumnElement[bool]]]:
    """(reason, condition) of each rule the thresholds switch on, in :data:`REASONS` order."""
    found: list[tuple[str, ColumnElement[bool]]] = []
    held: ColumnElement[bool] = true()
    if limits.protection_days is not None:
        held = since <= now - timedelta(days=limits.protection_days)
        found.append(("protection_expired", and_(held, _none_since(deals.c.last_won, since))))
    if limits.follow_up_days is not None:
        cutoff = now - timedelta(days=limits.follow_up_days)
        found.append(("no_follow_up", and_(held, since <= cutoff, _none_since(activity.c.last_activity, cutoff))))
    if limits.opportunity_days is not None:
        cutoff = now - timedelta(days=limits.opportunity_days)
        found.append(("no_opportunity", and_(held, since <= cutoff, _none_since(deals.c.last_opened, cutoff))))
    if limits.deal_days is not None:
        cutoff = now - timedelta(days=limits.deal_days)
        found.append(("no_deal", and_(held, since <= cutoff, _none_since(deals.c.last_won, cutoff))))
    return found


def reason_expression(
    pool: Pool, now: datetime, since: ColumnElement[Any], activity: Any, deals: Any
) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(whether a rule holds, the first rule's reason code) for an account row, tier by tier."""
    whens: list[tuple[ColumnElement[bool], str]] = []
    tiers = [t.value for t in Tier]
    for tier in [*tiers, None]:
        tier_clause = (
            Account.tier == tier if tier is not None else or_(Account.tier.is_(None), Account.tier.not_in(tiers))
        )
        for reason, condition in _rules(thresholds(pool, tier), now, since, activity, deals):
            whens.append((and_(tier_clause, condition), reason))
    if not whens:
        return false(), literal(None)
    return or_(*(condition for condition, _ in whens)), case(*whens, else_=literal(None))


def eligible(pool: Pool, now: datetime, other_region_ids: Sequence[int]) -> Select[Any]:
    """``SELECT account id, owner, tier, reason`` of the owned accounts ``pool``'s rules return at ``now``."""
    organization_id = pool.organization_id
    activity, deals = _statistics(organization_id)
    since = func.coalesce(PoolAccount.owned_since, Account.created_at)
    holds, reason = reason_expression(pool, now, since, activity, deals)
    conditions: list[ColumnElement[bool]] = [
        tenant_clause(organization_id, Account),
        Account.owner_id.is_not(None),
        in_pool_clause(pool, other_region_ids),
        PoolAccount.locked_at.is_(None),
        holds,
    ]
    if pool.exempt_won:
        conditions.append(func.coalesce(deals.c.won_count, 0) == 0)
    if pool.exempt_open_opportunities:
        conditions.append(func.coalesce(deals.c.open_count, 0) == 0)
    return (
        select(
            Account.id.label("account_id"),
            Account.owner_id.label("owner_id"),
            Account.tier.label("tier"),
            reason.label("reason"),
        )
        .select_from(Account)
        .outerjoin(
            PoolAccount,
            and_(PoolAccount.account_id == Account.id, tenant_clause(organization_id, PoolAccount)),
        )
        .outerjoin(activity, activity.c.account_id == Account.id)
        .outerjoin(deals, deals.c.account_id == Account.id)
        .where(*conditions)
    )
