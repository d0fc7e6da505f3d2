"""Which owned accounts a pool's recycle rules return to the public pool — as one SQL statement.

Every rule is a condition on the account row and correlated ``EXISTS`` sub-queries (its
activities, its opportunities), so that recycling a whole tenant is one ``INSERT … SELECT`` into
the owner-change history and one ``UPDATE accounts … WHERE id IN (…)``, the same on SQLite and
PostgreSQL — never a loop over accounts in Python.

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

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, literal, not_, or_, select, true

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


def _owned_since() -> ColumnElement[Any]:
    since = (
        select(PoolAccount.owned_since)
        .where(PoolAccount.account_id == Account.id, PoolAccount.organization_id == Account.organization_id)
        .correlate(Account)
        .scalar_subquery()
    )
    return func.coalesce(since, Account.created_at)


def _activity_since(cutoff: Any) -> ColumnElement[bool]:
    return exists().where(
        Activity.account_id == Account.id,
        tenant_clause_correlated(Activity),
        Activity.occurred_at >= cutoff,
    )


def tenant_clause_correlated(model: Any) -> ColumnElement[bool]:
    """The sub-query's rows of the account's own organization (and not deleted)."""
    clause: ColumnElement[bool] = model.organization_id == Account.organization_id
    if hasattr(model, "deleted_at"):
        clause = and_(clause, model.deleted_at.is_(None))
    return clause


def _opportunity_opened_since(cutoff: Any) -> ColumnElement[bool]:
    return exists().where(
        Opportunity.account_id == Account.id, tenant_clause_correlated(Opportunity), Opportunity.opened_at >= cutoff
    )


def _won_since(cutoff: Any) -> ColumnElement[bool]:
    return exists().where(
        Opportunity.account_id == Account.id,
        tenant_clause_correlated(Opportunity),
        Opportunity.stage == Stage.WON,
        Opportunity.closed_at >= cutoff,
    )


def _rules(limits: Thresholds, now: datetime, since: ColumnElement[Any]) -> list[tuple[str, ColumnElement[bool]]]:
    """(reason, condition) of each rule the thresholds switch on, in :data:`REASONS` order."""
    found: list[tuple[str, ColumnElement[bool]]] = []
    held: ColumnElement[bool] = true()
    if limits.protection_days is not None:
        protection_cutoff = now - timedelta(days=limits.protection_days)
        held = since <= protection_cutoff
        found.append(("protection_expired", and_(held, not_(_won_since(since)))))
    if limits.follow_up_days is not None:
        cutoff = now - timedelta(days=limits.follow_up_days)
        found.append(("no_follow_up", and_(held, since <= cutoff, not_(_activity_since(cutoff)))))
    if limits.opportunity_days is not None:
        cutoff = now - timedelta(days=limits.opportunity_days)
        found.append(("no_opportunity", and_(held, since <= cutoff, not_(_opportunity_opened_since(cutoff)))))
    if limits.deal_days is not None:
        cutoff = now - timedelta(days=limits.deal_days)
        found.append(("no_deal", and_(held, since <= cutoff, not_(_won_since(cutoff)))))
    return found


def reason_expression(pool: Pool, now: datetime) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(whether a rule holds, the first rule's reason code) for an account row, tier by tier."""
    since = _owned_since()
    whens: list[tuple[ColumnElement[bool], str]] = []
    conditions: list[ColumnElement[bool]] = []
    tiers = [t.value for t in Tier]
    for tier in [*tiers, None]:
        tier_clause = (
            Account.tier == tier if tier is not None else or_(Account.tier.is_(None), Account.tier.not_in(tiers))
        )
        rules = _rules(thresholds(pool, tier), now, since)
        for reason, condition in rules:
            whens.append((and_(tier_clause, condition), reason))
            conditions.append(and_(tier_clause, condition))
    if not conditions:
        return false(), literal(None)
    return or_(*conditions), case(*whens, else_=literal(None))


def eligible(pool: Pool, now: datetime, other_region_ids: Sequence[int]) -> Select[Any]:
    """``SELECT account id, owner, tier, reason`` of the owned accounts ``pool``'s rules return at ``now``."""
    holds, reason = reason_expression(pool, now)
    locked = exists().where(
        PoolAccount.account_id == Account.id,
        PoolAccount.organization_id == Account.organization_id,
        PoolAccount.locked_at.is_not(None),
    )
    conditions: list[ColumnElement[bool]] = [
        tenant_clause(pool.organization_id, Account),
        Account.owner_id.is_not(None),
        in_pool_clause(pool, other_region_ids),
        not_(locked),
        holds,
    ]
    if pool.exempt_won:
        conditions.append(
            not_(
                exists().where(
                    Opportunity.account_id == Account.id,
                    tenant_clause_correlated(Opportunity),
                    Opportunity.stage == Stage.WON,
                )
            )
        )
    if pool.exempt_open_opportunities:
        conditions.append(
            not_(
                exists().where(
                    Opportunity.account_id == Account.id,
                    tenant_clause_correlated(Opportunity),
                    Opportunity.stage.not_in([Stage.WON, Stage.LOST]),
                )
            )
        )
    return select(
        Account.id.label("account_id"),
        Account.owner_id.label("owner_id"),
        Account.tier.label("tier"),
        reason.label("reason"),
    ).where(*conditions)
