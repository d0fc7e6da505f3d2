"""Pool services: pools and their settings, claim / release / assign / lock, the private-pool view
with days to recycling, the set-based recycle run and the reminder before it.

Every owner change goes through :func:`_log_change` (the owner-change history) and the audit trail:
claims, releases and assignments one account at a time (row-locked, version bumped, audited as
``account.claimed`` / ``.released`` / ``.assigned``); a recycle run as
one audit entry per pool naming its batch, whose rows are in the history table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, insert, literal, null, select, update
from sqlalchemy.orm import Session

from closeloop.approvals.models import Approval, ApprovalStatus
from closeloop.core.actor import Actor, ActorKind, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import DomainError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.fields import readable_fields
from closeloop.governance.permissions import require
from closeloop.org.models import Department, Region, User
from closeloop.org.notifications import Message, notify
from closeloop.pools import rules
from closeloop.pools.models import RULE_FIELDS, DuplicateMode, OwnerAction, OwnerChange, Pool, PoolAccount, PoolSettings

SYSTEM_LABEL = "system:pools"
POOL_FIELDS = (
    "name",
    "description",
    "region_ids",
    "admin_ids",
    "department_ids",
    *RULE_FIELDS,
    "tier_rules",
    "remind_days",
    "exempt_won",
    "exempt_open_opportunities",
    "daily_claim_cap",
    "holding_cap",
    "lock_cap",
    "cooldown_days",
    "is_active",
)
#: the account fields a pool listing shows (each only if the reader may read it)
LISTED_FIELDS = ("id", "name", "industry", "tier", "city", "province", "region_id")


class PoolRefusal(DomainError):
    """A claim, lock or release refused by a pool rule; the message in both languages."""

    def __init__(self, code: str, message_en: str, message_zh: str, **details: Any) -> None:
        super().__init__(
            message_en, code=code, status=409, extra={"message_en": message_en, "message_zh": message_zh, **details}
        )


# --- settings and pools -----------------------------------------------------------------------


def duplicate_mode(session: Session, organization_id: int) -> DuplicateMode:
    """The organization's duplicate protection (warn when never set)."""
    mode = session.scalar(select(PoolSettings.duplicate_mode).where(tenant_clause(organization_id, PoolSettings)))
    return DuplicateMode(mode) if mode else DuplicateMode.WARN


def set_duplicate_mode(session: Session, actor: Actor, mode: DuplicateMode) -> DuplicateMode:
    require(actor, "pools:manage")
    settings = session.scalar(select(PoolSettings).where(tenant_clause(actor.organization_id, PoolSettings)))
    before = settings.duplicate_mode if settings else DuplicateMode.WARN
    if settings is None:
        settings = PoolSettings(organization_id=actor.organization_id, duplicate_mode=mode)
        session.add(settings)
    else:
        settings.duplicate_mode = mode
    session.flush()
    audit.record(
        session,
        actor,
        "pool_settings.updated",
        subject_type="pool_settings",
        subject_id=settings.id,
        changes=audit.diff({"duplicate_mode": str(before)}, {"duplicate_mode": str(mode)}),
    )
    return mode


def list_pools(session: Session, actor: Actor) -> list[Pool]:
    require(actor, "pools:read")
    return list(session.scalars(select(Pool).where(tenant_clause(actor.organization_id, Pool)).order_by(Pool.id)))


def get_pool(session: Session, actor: Actor, pool_id: int) -> Pool:
    require(actor, "pools:read")
    pool = session.scalar(select(Pool).where(tenant_clause(actor.organization_id, Pool), Pool.id == pool_id))
    if pool is None:
        raise NotFound("pool", pool_id)
    return pool


def can_manage(actor: Actor, pool: Pool | None) -> bool:
    """Sales ops (``pools:manage``) manage every pool; a pool's admins manage theirs."""
    if actor.can("pools:manage"):
        return True
    return pool is not None and actor.user_id is not None and actor.user_id in (pool.admin_ids or [])


def check_values(session: Session, actor: Actor, values: Mapping[str, Any]) -> None:
    """Refuse out-of-range days and caps, and unknown regions, departments or admins (naming each)."""
    for name in (*RULE_FIELDS, "remind_days", "daily_claim_cap", "holding_cap", "lock_cap", "cooldown_days"):
        value = values.get(name)
        if value is not None and (not isinstance(value, int) or not 0 <= value <= 3650):
            raise ValidationFailed.one(name, "must be a whole number of 0 to 3650, or empty")
    for tier, overrides in (values.get("tier_rules") or {}).items():
        if tier not in ("A", "B", "C") or not isinstance(overrides, dict):
            raise ValidationFailed.one("tier_rules", f"'{tier}': tiers are A, B, C, each with rule days")
        for name, value in overrides.items():
            if name not in RULE_FIELDS or (
                value is not None and (not isinstance(value, int) or not 0 <= value <= 3650)
            ):
                raise ValidationFailed.one(
                    f"tier_rules.{tier}.{name}", f"not one of {', '.join(RULE_FIELDS)} with days"
                )
    region_ids = [int(r) for r in values.get("region_ids") or []]
    if region_ids:
        found = set(
            session.scalars(
                select(Region.id).where(tenant_clause(actor.organization_id, Region), Region.id.in_(region_ids))
            )
        )
        missing = sorted(set(region_ids) - found)
        if missing:
            raise ValidationFailed.one("region_ids", f"no region {missing[0]} in your organization", "not_found")
    department_ids = [int(d) for d in values.get("department_ids") or []]
    if department_ids:
        found = set(
            session.scalars(
                select(Department.id).where(
                    tenant_clause(actor.organization_id, Department), Department.id.in_(department_ids)
                )
            )
        )
        missing = sorted(set(department_ids) - found)
        if missing:
            raise ValidationFailed.one(
                "department_ids", f"no department {missing[0]} in your organization", "not_found"
            )
    admin_ids = [int(u) for u in values.get("admin_ids") or []]
    if admin_ids:
        found = set(
            session.scalars(select(User.id).where(tenant_clause(actor.organization_id, User), User.id.in_(admin_ids)))
        )
        missing = sorted(set(admin_ids) - found)
        if missing:
            raise ValidationFailed.one("admin_ids", f"no user {missing[0]} in your organization", "not_found")


def _taken_regions(session: Session, organization_id: int, *, other_than: int | None) -> set[int]:
    taken: set[int] = set()
    for pool_id, region_ids in session.execute(
        select(Pool.id, Pool.region_ids).where(tenant_clause(organization_id, Pool))
    ):
        if pool_id != other_than:
            taken.update(int(r) for r in region_ids or [])
    return taken


def _check_overlap(session: Session, actor: Actor, values: Mapping[str, Any], pool_id: int | None) -> None:
    overlap = sorted(
        {int(r) for r in values.get("region_ids") or []}
        & _taken_regions(session, actor.organization_id, other_than=pool_id)
    )
    if overlap:
        raise ValidationFailed.one("region_ids", f"region {overlap[0]} belongs to another pool already", "overlap")
    if not values.get("region_ids"):
        catch_all = [p.id for p in list_pools(session, actor) if not p.region_ids and p.id != pool_id]
        if catch_all:
            raise ValidationFailed.one(
                "region_ids", f"pool {catch_all[0]} already takes every other account; name regions", "overlap"
            )


def _pool_snapshot(pool: Pool) -> dict[str, Any]:
    return {name: getattr(pool, name) for name in POOL_FIELDS}


def new_pool(session: Session, actor: Actor, values: Mapping[str, Any]) -> Pool:
    """The pool ``values`` would create, checked as creating it checks (sales ops; days and caps in
    range; regions no other pool takes; a name not taken) — detached, with the columns' defaults:
    nothing is added to the session."""
    require(actor, "pools:manage")
    check_values(session, actor, values)
    _check_overlap(session, actor, values, None)
    data = {name: values[name] for name in POOL_FIELDS if name in values}
    data.setdefault("region_ids", [])
    data.setdefault("admin_ids", [])
    data.setdefault("department_ids", [])
    data.setdefault("tier_rules", {})
    data.setdefault("exempt_won", True)
    data.setdefault("exempt_open_opportunities", True)
    data.setdefault("is_active", True)
    if session.scalar(select(Pool.id).where(tenant_clause(actor.organization_id, Pool), Pool.name == data.get("name"))):
        raise DomainError(f"A pool named '{data.get('name')}' exists already", code="duplicate", status=409)
    return Pool(organization_id=actor.organization_id, **data)


def taken_regions(session: Session, organization_id: int) -> list[int]:
    """The regions the organization's pools take (what a new all-regions pool leaves to them)."""
    return sorted(_taken_regions(session, organization_id, other_than=None))


def create_pool(session: Session, actor: Actor, values: Mapping[str, Any]) -> Pool:
    pool = new_pool(session, actor, values)
    session.add(pool)
    session.flush()
    audit.record(
        session,
        actor,
        "pool.created",
        subject_type="pool",
        subject_id=pool.id,
        changes=audit.diff({}, _pool_snapshot(pool)),
    )
    return pool


def update_pool(
    session: Session, actor: Actor, pool_id: int, changes: Mapping[str, Any], *, expected_version: int | None = None
) -> Pool:
    pool = get_pool(session, actor, pool_id)
    if not can_manage(actor, pool):
        raise Forbidden("Only the pool's admins or sales ops (pools:manage) may change the pool")
    if "admin_ids" in changes and not actor.can("pools:manage"):
        raise Forbidden("Only sales ops (pools:manage) may name a pool's admins", field_name="admin_ids")
    check_values(session, actor, changes)
    if "region_ids" in changes:
        _check_overlap(session, actor, changes, pool.id)
    if expected_version is not None and pool.version != expected_version:
        raise PreconditionFailed()
    before = _pool_snapshot(pool)
    for name, value in changes.items():
        if name in POOL_FIELDS:
            setattr(pool, name, value)
    records.flush(session)
    difference = audit.diff(before, _pool_snapshot(pool))
    if difference:
        audit.record(session, actor, "pool.updated", subject_type="pool", subject_id=pool.id, changes=difference)
    return pool


def serialize_pool(pool: Pool) -> dict[str, Any]:
    return {"id": pool.id, "version": pool.version, **_pool_snapshot(pool)}


# --- who belongs where ------------------------------------------------------------------------


def pool_of_region(session: Session, organization_id: int, region_id: int | None) -> Pool | None:
    """The pool whose regions hold ``region_id``, else the pool that takes every other account."""
    pools = list(
        session.scalars(
            select(Pool).where(tenant_clause(organization_id, Pool), Pool.is_active.is_(True)).order_by(Pool.id)
        )
    )
    for pool in pools:
        if region_id is not None and region_id in [int(r) for r in pool.region_ids or []]:
            return pool
    return next((pool for pool in pools if not pool.region_ids), None)


def other_regions(session: Session, pool: Pool) -> list[int]:
    """The regions other active pools take (an all-regions pool takes the rest)."""
    return sorted(_taken_regions(session, pool.organization_id, other_than=pool.id))


def _user(session: Session, actor: Actor, user_id: int | None) -> User:
    user = session.scalar(
        select(User).where(tenant_clause(actor.organization_id, User), User.id == user_id, User.is_active.is_(True))
    )
    if user is None:
        raise ValidationFailed.one("user_id", f"no active user {user_id} in your organization", "not_found")
    return user


def is_member(session: Session, actor: Actor, pool: Pool) -> bool:
    """Whether ``actor`` may take accounts from ``pool``: it manages the pool; or, for a pool scoped
    to departments, it belongs to one of them or to a department below one; otherwise its region is
    one of the pool's (or the pool takes every region)."""
    if can_manage(actor, pool):
        return True
    person = session.execute(
        select(User.region_id, User.department_id).where(
            tenant_clause(actor.organization_id, User), User.id == actor.user_id
        )
    ).first()
    if pool.department_ids:
        if person is None or person.department_id is None:
            return False
        return bool(
            set(department_chain(session, actor.organization_id, int(person.department_id)))
            & {int(d) for d in pool.department_ids}
        )
    if not pool.region_ids:
        return True
    return person is not None and person.region_id is not None and person.region_id in [int(r) for r in pool.region_ids]


def department_chain(session: Session, organization_id: int, department_id: int) -> list[int]:
    """``department_id`` and the departments above it, nearest first."""
    parents = dict(
        session.execute(
            select(Department.id, Department.parent_id).where(tenant_clause(organization_id, Department))
        ).all()
    )
    chain: list[int] = []
    current: int | None = department_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


def _account(session: Session, actor: Actor, account_id: int) -> Account:
    """The account, locked for the change, seen organization-wide (a pool account has no owner)."""
    account = session.scalar(
        select(Account).where(tenant_clause(actor.organization_id, Account), Account.id == account_id).with_for_update()
    )
    if account is None:
        raise NotFound("account", account_id)
    return account


def _entry(session: Session, organization_id: int, account_id: int) -> PoolAccount:
    entry = session.scalar(
        select(PoolAccount).where(tenant_clause(organization_id, PoolAccount), PoolAccount.account_id == account_id)
    )
    if entry is None:
        entry = PoolAccount(organization_id=organization_id, account_id=account_id)
        session.add(entry)
    return entry


def _log_change(
    session: Session,
    actor: Actor,
    account: Account,
    pool: Pool | None,
    action: OwnerAction,
    before: int | None,
    after: int | None,
    reason: str | None,
) -> None:
    session.add(
        OwnerChange(
            organization_id=actor.organization_id,
            account_id=account.id,
            pool_id=pool.id if pool else None,
            action=action,
            from_owner_id=before,
            to_owner_id=after,
            reason=(reason or None) and reason[:300],
            actor_label=actor.label[:120],
            actor_user_id=actor.user_id,
            changed_at=utcnow(),
        )
    )


def _set_owner(
    session: Session, actor: Actor, account: Account, owner_id: int | None, action: OwnerAction, reason: str | None
) -> None:
    """Change the owner through the record service (audited), bypassing the row scope on purpose:
    a pool account has no owner, so no rep can see it until the pool hands it over."""
    records.require_write(actor, ACCOUNTS)
    before = account.owner_id
    account.owner_id = owner_id
    records.flush(session)
    audit.record(
        session,
        actor,
        f"account.{action.value}",
        subject_type="account",
        subject_id=account.id,
        changes=audit.diff({"owner_id": before}, {"owner_id": owner_id})
        | ({"reason": [None, reason]} if reason else {}),
    )
    _carry_related(session, actor, account, before, owner_id)


def _carry_related(session: Session, actor: Actor, account: Account, before: int | None, after: int | None) -> None:
    """What the previous owner held of the account goes with it, as a CRM's account transfer does:
    its contacts, and — when someone takes the account over — its open deals. Won and lost deals
    stay with whoever closed them (bookings and commissions are theirs); records that another
    colleague owns stay theirs. Each change is audited as an update of its record, and the row
    scope is bypassed on purpose, as for the account itself (a claimant cannot yet see the
    contacts of the account they are taking)."""
    if before == after:
        return
    held: list[tuple[str, Any, tuple[ColumnElement[bool], ...]]] = [("contact", Contact, ())]
    if after is not None:
        open_deal = Opportunity.stage.not_in([Stage.WON.value, Stage.LOST.value])
        held.append(("opportunity", Opportunity, (open_deal,)))
    for noun, model, extra in held:
        owner = model.owner_id.is_(None) if before is None else model.owner_id == before
        rows = session.scalars(
            select(model)
            .where(tenant_clause(actor.organization_id, model), model.account_id == account.id, owner, *extra)
            .order_by(model.id)
        ).all()
        for row in rows:
            row.owner_id = after
        if rows:
            records.flush(session)
        for row in rows:
            audit.record(
                session,
                actor,
                f"{noun}.updated",
                subject_type=noun,
                subject_id=row.id,
                changes=audit.diff({"owner_id": before}, {"owner_id": after}),
            )


def last_given_up(session: Session, organization_id: int, account_id: int) -> tuple[int, datetime] | None:
    """(who, when) of the account's latest change, when it took the account from someone into the
    public pool (a release or a recycling) — what the cooldown runs from."""
    row = session.execute(
        select(OwnerChange.from_owner_id, OwnerChange.to_owner_id, OwnerChange.changed_at)
        .where(tenant_clause(organization_id, OwnerChange), OwnerChange.account_id == account_id)
        .order_by(OwnerChange.id.desc())
        .limit(1)
    ).first()
    if row is None or row.to_owner_id is not None or row.from_owner_id is None:
        return None
    return int(row.from_owner_id), as_utc(row.changed_at)


def _released_at(organization_id: int) -> Any:
    """The time an account of the listing last went to the public pool (a correlated sub-query)."""
    return (
        select(func.max(OwnerChange.changed_at))
        .where(
            tenant_clause(organization_id, OwnerChange),
            OwnerChange.account_id == Account.id,
            OwnerChange.to_owner_id.is_(None),
        )
        .correlate(Account)
        .scalar_subquery()
    )


# --- counts the caps are made of --------------------------------------------------------------


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def claims_today(session: Session, organization_id: int, user_id: int, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(OwnerChange)
            .where(
                tenant_clause(organization_id, OwnerChange),
                OwnerChange.to_owner_id == user_id,
                OwnerChange.action == OwnerAction.CLAIMED,
                OwnerChange.changed_at >= day_start(now),
            )
        )
        or 0
    )


def holding(session: Session, pool: Pool, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Account)
            .where(
                tenant_clause(pool.organization_id, Account),
                Account.owner_id == user_id,
                rules.in_pool_clause(pool, other_regions(session, pool)),
            )
        )
        or 0
    )


def locked_count(session: Session, pool: Pool, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Account)
            .join(
                PoolAccount, (PoolAccount.account_id == Account.id) & tenant_clause(pool.organization_id, PoolAccount)
            )
            .where(
                tenant_clause(pool.organization_id, Account),
                Account.owner_id == user_id,
                PoolAccount.locked_at.is_not(None),
                rules.in_pool_clause(pool, other_regions(session, pool)),
            )
        )
        or 0
    )


@dataclass(frozen=True)
class Caps:
    claims_today: int
    daily_claim_cap: int | None
    holding: int
    holding_cap: int | None
    locked: int
    lock_cap: int | None

    @property
    def claims_left(self) -> int | None:
        return None if self.daily_claim_cap is None else max(self.daily_claim_cap - self.claims_today, 0)


def caps(session: Session, actor: Actor, pool: Pool) -> Caps:
    now = utcnow()
    user_id = actor.user_id or 0
    return Caps(
        claims_today(session, actor.organization_id, user_id, now),
        pool.daily_claim_cap,
        holding(session, pool, user_id),
        pool.holding_cap,
        locked_count(session, pool, user_id),
        pool.lock_cap,
    )


def _check_holding(session: Session, pool: Pool, user_id: int, who: str) -> None:
    if pool.holding_cap is None:
        return
    held = holding(session, pool, user_id)
    if held >= pool.holding_cap:
        raise PoolRefusal(
            "holding_cap",
            f"Holding cap reached: {who} already hold {held} of {pool.holding_cap} accounts "
            f"in pool '{pool.name}'; release one first",
            f"私海客户数已达上限：{'您' if who == 'you' else who}在「{pool.name}」"
            f"已持有 {held}/{pool.holding_cap} 个客户，请先释放",
            held=held,
            cap=pool.holding_cap,
        )


# --- claim, release, assign, lock -------------------------------------------------------------


def _account_pool(session: Session, actor: Actor, account: Account, pool_id: int | None) -> Pool:
    pool = pool_of_region(session, actor.organization_id, account.region_id)
    if pool is None or (pool_id is not None and pool.id != pool_id):
        raise NotFound("account in this pool", account.id)
    return pool


def claim(
    session: Session, actor: Actor, *, account_id: int, pool_id: int | None = None, reason: str | None = None
) -> Account:
    """Take an account from the public pool into the actor's private pool, within the pool's rules."""
    require(actor, "pools:claim")
    if actor.user_id is None:
        raise Forbidden("Only a person can claim an account")
    account = _account(session, actor, account_id)
    pool = _account_pool(session, actor, account, pool_id)
    if not is_member(session, actor, pool):
        raise PoolRefusal(
            "not_a_member",
            f"Pool '{pool.name}' is for other regions or departments",
            f"「{pool.name}」属于其他区域或部门，您不能从中领取",
        )
    if account.owner_id is not None:
        raise PoolRefusal(
            "already_owned",
            f"Account {account.id} is owned already; it is not in the public pool",
            f"客户 {account.id} 已有负责人，不在公海中",
        )
    now = utcnow()
    entry = _entry(session, actor.organization_id, account.id)
    given_up = last_given_up(session, actor.organization_id, account.id)
    if pool.cooldown_days and given_up is not None and given_up[0] == actor.user_id:
        released_at = given_up[1]
        until = released_at + timedelta(days=pool.cooldown_days)
        if now < until:
            raise PoolRefusal(
                "cooldown",
                f"Cooldown: you gave this account up on {released_at:%Y-%m-%d}; you may claim it "
                f"again from {until:%Y-%m-%d %H:%M} UTC ({pool.cooldown_days}-day cooldown)",
                f"冷却期内：您于 {released_at:%Y-%m-%d} 退回了该客户，"
                f"{until:%Y-%m-%d %H:%M}（UTC）起才能再次领取（冷却期 {pool.cooldown_days} 天）",
                available_at=until.isoformat(),
            )
    if pool.daily_claim_cap is not None:
        today = claims_today(session, actor.organization_id, actor.user_id, now)
        if today >= pool.daily_claim_cap:
            raise PoolRefusal(
                "daily_claim_cap",
                f"Daily claim cap reached: you have claimed {today} of {pool.daily_claim_cap} accounts today; "
                "try again tomorrow",
                f"今日领取已达上限：今天已领取 {today}/{pool.daily_claim_cap} 个客户，请明天再领",
                claimed_today=today,
                cap=pool.daily_claim_cap,
            )
    _check_holding(session, pool, actor.user_id, "you")
    _set_owner(session, actor, account, actor.user_id, OwnerAction.CLAIMED, reason)
    entry.owned_since = now
    entry.locked_at = None
    _log_change(session, actor, account, pool, OwnerAction.CLAIMED, None, actor.user_id, reason)
    session.flush()
    return account


def _may_handle(session: Session, actor: Actor, account: Account, pool: Pool) -> bool:
    if can_manage(actor, pool) or account.owner_id == actor.user_id:
        return True
    return actor.scope is RowScope.TEAM and account.owner_id in actor.owner_ids


def release(session: Session, actor: Actor, *, account_id: int, reason: str | None = None) -> Account:
    """Give an owned account back to its public pool (its owner, the owner's manager or a pool admin)."""
    require(actor, "pools:claim")
    account = _account(session, actor, account_id)
    pool = _account_pool(session, actor, account, None)
    if account.owner_id is None:
        raise PoolRefusal(
            "not_owned", f"Account {account.id} is in the public pool already", f"客户 {account.id} 已在公海中"
        )
    if not _may_handle(session, actor, account, pool):
        raise NotFound("account", account_id)
    before = account.owner_id
    _set_owner(session, actor, account, None, OwnerAction.RELEASED, reason)
    entry = _entry(session, actor.organization_id, account.id)
    entry.owned_since, entry.locked_at = None, None
    _log_change(session, actor, account, pool, OwnerAction.RELEASED, before, None, reason)
    session.flush()
    return account


def assign(session: Session, actor: Actor, *, account_id: int, user_id: int, reason: str | None = None) -> Account:
    """Hand an account (pooled or owned) to ``user_id``: pool admins and sales ops; the holding cap holds."""
    require(actor, "pools:claim")
    account = _account(session, actor, account_id)
    pool = _account_pool(session, actor, account, None)
    if not can_manage(actor, pool):
        raise Forbidden("Only the pool's admins or sales ops (pools:manage) may assign accounts")
    target = _user(session, actor, user_id)
    if account.owner_id == target.id:
        return account
    _check_holding(session, pool, target.id, target.display_name)
    before = account.owner_id
    _set_owner(session, actor, account, target.id, OwnerAction.ASSIGNED, reason)
    entry = _entry(session, actor.organization_id, account.id)
    entry.owned_since, entry.locked_at = utcnow(), None
    _log_change(session, actor, account, pool, OwnerAction.ASSIGNED, before, target.id, reason)
    session.flush()
    return account


def set_lock(session: Session, actor: Actor, *, account_id: int, locked: bool) -> Account:
    """Lock an owned account (never recycled) within the pool's lock cap, or unlock it."""
    require(actor, "pools:claim")
    account = _account(session, actor, account_id)
    pool = _account_pool(session, actor, account, None)
    if account.owner_id is None:
        raise PoolRefusal(
            "not_owned",
            f"Account {account.id} is in the public pool; only owned accounts are locked",
            f"客户 {account.id} 在公海中，只能锁定私海客户",
        )
    if not _may_handle(session, actor, account, pool):
        raise NotFound("account", account_id)
    entry = _entry(session, actor.organization_id, account.id)
    if locked and entry.locked_at is None:
        if pool.lock_cap is not None:
            count = locked_count(session, pool, account.owner_id)
            if count >= pool.lock_cap:
                raise PoolRefusal(
                    "lock_cap",
                    f"Lock cap reached: {count} of {pool.lock_cap} accounts are locked already; unlock one first",
                    f"锁定客户数已达上限：已锁定 {count}/{pool.lock_cap} 个客户，请先解锁",
                    locked=count,
                    cap=pool.lock_cap,
                )
        entry.locked_at = utcnow()
    elif not locked:
        entry.locked_at = None
    else:
        return account
    session.flush()
    audit.record(
        session,
        actor,
        "account.locked" if locked else "account.unlocked",
        subject_type="account",
        subject_id=account.id,
        changes={"locked": [not locked, locked]},
    )
    return account


def _approved_transfer_reason(session: Session, actor: Actor, account: Account) -> str | None:
    """The reason given for the account-transfer approval that is handing the account over now
    (the approval engine acts as the system; the reason is in what was submitted)."""
    approval = session.scalar(
        select(Approval)
        .where(
            tenant_clause(actor.organization_id, Approval),
            Approval.record_type == "account_transfer",
            Approval.record_id == account.id,
            Approval.status == ApprovalStatus.APPROVED,
        )
        .order_by(Approval.id.desc())
        .limit(1)
    )
    if approval is None or (approval.snapshot or {}).get("to_owner_id") != account.owner_id:
        return None
    reason = (approval.snapshot or {}).get("reason")
    return str(reason) if reason else None


def on_owner_edited(session: Session, actor: Actor, account: Account, previous_owner: int | None) -> None:
    """An account's owner was changed by an edit rather than a claim, release or assignment: log the
    transfer like the others and restart the protection period (CN-2) for the new owner; a lock
    belongs to the owner who set it, so it goes."""
    entry = _entry(session, actor.organization_id, account.id)
    entry.owned_since = utcnow() if account.owner_id is not None else None
    entry.locked_at = None
    pool = pool_of_region(session, actor.organization_id, account.region_id)
    reason = _approved_transfer_reason(session, actor, account) if actor.kind is ActorKind.SYSTEM else None
    _log_change(session, actor, account, pool, OwnerAction.TRANSFERRED, previous_owner, account.owner_id, reason)
    # the edit is audited as ``account.updated``; the transfer is an event of its own too, as claims,
    # releases and assignments are, so rules keyed on it fire whichever path moved the account
    audit.record(
        session,
        actor,
        f"account.{OwnerAction.TRANSFERRED.value}",
        subject_type="account",
        subject_id=account.id,
        changes=audit.diff({"owner_id": previous_owner}, {"owner_id": account.owner_id}),
    )
    _carry_related(session, actor, account, previous_owner, account.owner_id)


def transfer(session: Session, actor: Actor, *, account_id: int, user_id: int, reason: str | None = None) -> Account:
    """Hand an account to ``user_id`` as an edit of its owner would (the account service's checks:
    write permission, row scope, an owner within the actor's reach), logged as "transferred" with
    the reason given. The web's "transfer account" form when no approval flow applies."""
    if records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.WRITE).owner_id == user_id:
        raise ValidationFailed.one("to_owner_id", "the account already belongs to this user")
    account = account_service.update_account(session, actor, account_id=account_id, data={"owner_id": user_id})
    session.flush()
    logged = session.scalar(
        select(OwnerChange)
        .where(tenant_clause(actor.organization_id, OwnerChange), OwnerChange.account_id == account_id)
        .order_by(OwnerChange.id.desc())
        .limit(1)
    )
    if logged is not None and logged.action == OwnerAction.TRANSFERRED and logged.to_owner_id == user_id and reason:
        logged.reason = reason[:300]
        session.flush()
    return account


def owner_history(session: Session, actor: Actor, account_id: int) -> list[dict[str, Any]]:
    """The owner changes of an account the actor may see, newest first."""
    records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.READ)
    rows = session.scalars(
        select(OwnerChange)
        .where(tenant_clause(actor.organization_id, OwnerChange), OwnerChange.account_id == account_id)
        .order_by(OwnerChange.id.desc())
        .limit(200)
    )
    return [
        {
            "action": r.action,
            "from_owner_id": r.from_owner_id,
            "to_owner_id": r.to_owner_id,
            "reason": r.reason,
            "actor": r.actor_label,
            "pool_id": r.pool_id,
            "changed_at": r.changed_at.isoformat(),
        }
        for r in rows
    ]


# --- listings ---------------------------------------------------------------------------------


def _listed(session: Session, actor: Actor) -> tuple[str, ...]:
    return readable_fields(session, actor, "account", LISTED_FIELDS)


def public_accounts(
    session: Session, actor: Actor, pool_id: int, *, limit: int = 50, after_id: int | None = None, q: str | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the pool's public accounts (newest id first), with the fields the reader may read."""
    pool = get_pool(session, actor, pool_id)
    if not is_member(session, actor, pool):
        raise Forbidden(f"Pool '{pool.name}' is for other regions or departments")
    fields = _listed(session, actor)
    columns = [getattr(Account, name) for name in fields]
    statement = (
        select(*columns, _released_at(actor.organization_id).label("released_at"))
        .where(
            tenant_clause(actor.organization_id, Account),
            Account.owner_id.is_(None),
            rules.in_pool_clause(pool, other_regions(session, pool)),
        )
        .order_by(Account.id.desc())
        .limit(limit + 1)
    )
    if after_id is not None:
        statement = statement.where(Account.id < after_id)
    if q:
        from closeloop.crm.searchkey import query_key

        statement = statement.where(Account.search_key.contains(query_key(q), autoescape=True))
    rows = list(session.execute(statement))
    items = [dict(zip([*fields, "released_at"], row, strict=True)) for row in rows[:limit]]
    for item in items:
        item["released_at"] = as_utc(item["released_at"]).isoformat() if item["released_at"] else None
    return items, (items[-1]["id"] if len(rows) > limit and items and "id" in items[-1] else None)


@dataclass
class Held:
    account_id: int
    name: str
    tier: str | None
    locked: bool
    owned_since: datetime
    recycle_at: datetime | None
    reason: str | None
    pool_id: int | None

    def days_left(self, now: datetime) -> int | None:
        if self.recycle_at is None:
            return None
        return max((self.recycle_at - now).days, 0)


def _last(
    session: Session, organization_id: int, column: Any, model: Any, ids: Sequence[int], *extra: ColumnElement[bool]
) -> dict[int, datetime]:
    if not ids:
        return {}
    rows = session.execute(
        select(model.account_id, func.max(column))
        .where(tenant_clause(organization_id, model), model.account_id.in_(ids), *extra)
        .group_by(model.account_id)
    )
    return {row[0]: as_utc(row[1]) for row in rows if row[1] is not None}


def private_accounts(session: Session, actor: Actor, *, user_id: int | None = None, limit: int = 200) -> list[Held]:
    """The accounts a person holds, with the day each would go back to its pool if nothing happens."""
    require(actor, "pools:read")
    owner = user_id if user_id is not None else actor.user_id
    if owner is None:
        return []
    if owner != actor.user_id and not (actor.scope is RowScope.ALL or owner in actor.owner_ids):
        raise NotFound("user", owner)
    rows = list(
        session.execute(
            select(
                Account.id,
                Account.name,
                Account.tier,
                Account.region_id,
                Account.created_at,
                PoolAccount.owned_since,
                PoolAccount.locked_at,
            )
            .outerjoin(
                PoolAccount, (PoolAccount.account_id == Account.id) & tenant_clause(actor.organization_id, PoolAccount)
            )
            .where(tenant_clause(actor.organization_id, Account), Account.owner_id == owner)
            .order_by(Account.id.desc())
            .limit(limit)
        )
    )
    ids = [row.id for row in rows]
    org = actor.organization_id
    last_activity = _last(session, org, Activity.occurred_at, Activity, ids)
    last_opened = _last(session, org, Opportunity.opened_at, Opportunity, ids)
    last_won = _last(session, org, Opportunity.closed_at, Opportunity, ids, Opportunity.stage == Stage.WON)
    open_ids = set(
        session.scalars(
            select(Opportunity.account_id).where(
                tenant_clause(org, Opportunity),
                Opportunity.account_id.in_(ids or [0]),
                Opportunity.stage.not_in([Stage.WON, Stage.LOST]),
            )
        )
    )
    pools_by_region: dict[int | None, Pool | None] = {}
    held: list[Held] = []
    for row in rows:
        if row.region_id not in pools_by_region:
            pools_by_region[row.region_id] = pool_of_region(session, org, row.region_id)
        pool = pools_by_region[row.region_id]
        since = as_utc(row.owned_since or row.created_at)
        recycle_at, reason = None, None
        exempt = row.locked_at is not None or pool is None
        if pool is not None and (
            (pool.exempt_won and row.id in last_won) or (pool.exempt_open_opportunities and row.id in open_ids)
        ):
            exempt = True
        if not exempt and pool is not None:
            recycle_at, reason = recycle_date(
                rules.thresholds(pool, row.tier),
                since,
                last_activity.get(row.id),
                last_opened.get(row.id),
                last_won.get(row.id),
            )
        held.append(
            Held(
                row.id,
                row.name,
                row.tier,
                row.locked_at is not None,
                since,
                recycle_at,
                reason,
                pool.id if pool else None,
            )
        )
    return held


def recycle_date(
    limits: rules.Thresholds, since: datetime, activity: datetime | None, opened: datetime | None, won: datetime | None
) -> tuple[datetime | None, str | None]:
    """When the rules would return an account if nothing happens from now on (mirrors :mod:`rules`)."""
    candidates: list[tuple[datetime, str]] = []
    floor = since + timedelta(days=limits.protection_days) if limits.protection_days is not None else since
    if limits.protection_days is not None and not (won is not None and won >= since):
        candidates.append((floor, "protection_expired"))
    for days, last, reason in (
        (limits.follow_up_days, activity, "no_follow_up"),
        (limits.opportunity_days, opened, "no_opportunity"),
        (limits.deal_days, won, "no_deal"),
    ):
        if days is None:
            continue
        reference = max(since, last) if last is not None else since
        candidates.append((max(reference + timedelta(days=days), floor), reason))
    if not candidates:
        return None, None
    return min(candidates, key=lambda c: (c[0], rules.REASONS.index(c[1])))


# --- the recycle run --------------------------------------------------------------------------


@dataclass
class PoolRun:
    pool_id: int
    pool_name: str
    by_reason: dict[str, int] = field(default_factory=dict)
    reminded_owners: int = 0
    reminded_accounts: int = 0
    batch: str | None = None

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


def recycle(
    session: Session, organization_id: int, *, dry_run: bool = False, now: datetime | None = None
) -> list[PoolRun]:
    """Return every pool's eligible accounts to their public pool — one set-based statement per step
    — and remind owners of those that would go within the pool's ``remind_days``."""
    from closeloop.org.service import system_actor

    now = now or utcnow()
    actor = system_actor(organization_id, label=SYSTEM_LABEL)
    pools = list(
        session.scalars(
            select(Pool).where(tenant_clause(organization_id, Pool), Pool.is_active.is_(True)).order_by(Pool.id)
        )
    )
    runs: list[PoolRun] = []
    for pool in pools:
        others = other_regions(session, pool)
        chosen = rules.eligible(pool, now, others).subquery()
        run = PoolRun(pool.id, pool.name)
        if dry_run:
            for reason, count in session.execute(select(chosen.c.reason, func.count()).group_by(chosen.c.reason)):
                run.by_reason[str(reason)] = int(count)
        else:
            _recycle_set(session, actor, pool, chosen, now, run)
            # what goes today is no longer owned: whatever the rules take by then is still to come
            _remind(session, pool, now, others, run)
        runs.append(run)
    return runs


def _recycle_set(session: Session, actor: Actor, pool: Pool, chosen: Any, now: datetime, run: PoolRun) -> None:
    batch = str(uuid.uuid4())
    run.batch = batch
    org = pool.organization_id
    # 1. the history rows (who held it, why it goes) — INSERT … SELECT over the eligible set
    session.execute(
        insert(OwnerChange).from_select(
            [
                "organization_id",
                "account_id",
                "pool_id",
                "action",
                "from_owner_id",
                "to_owner_id",
                "reason",
                "actor_label",
                "changed_at",
                "batch",
            ],
            select(
                literal(org, Account.organization_id.type),
                chosen.c.account_id,
                literal(pool.id, OwnerChange.pool_id.type),
                literal(OwnerAction.RECYCLED.value, OwnerChange.action.type),
                chosen.c.owner_id,
                null(),
                chosen.c.reason,
                literal(SYSTEM_LABEL, OwnerChange.actor_label.type),
                literal(now, OwnerChange.changed_at.type),
                literal(batch, OwnerChange.batch.type),
            ),
        )
    )
    moved = select(OwnerChange.account_id).where(tenant_clause(org, OwnerChange), OwnerChange.batch == batch)
    counted = (
        select(OwnerChange.reason, func.count())
        .where(tenant_clause(org, OwnerChange), OwnerChange.batch == batch)
        .group_by(OwnerChange.reason)
    )
    run.by_reason = {str(reason): int(count) for reason, count in session.execute(counted)}
    if not run.total:
        run.batch = None
        return
    # 2. the one UPDATE of the accounts
    session.execute(
        update(Account)
        .where(tenant_clause(org, Account), Account.id.in_(moved))
        .values(owner_id=None, version=Account.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    # 3. the contacts their previous owners held go back with them (the one-by-one moves' rule)
    previous = (
        select(OwnerChange.from_owner_id)
        .where(
            tenant_clause(org, OwnerChange), OwnerChange.batch == batch, OwnerChange.account_id == Contact.account_id
        )
        .correlate(Contact)
        .scalar_subquery()
    )
    contacts = session.execute(
        update(Contact)
        .where(tenant_clause(org, Contact), Contact.account_id.in_(moved), Contact.owner_id == previous)
        .values(owner_id=None, version=Contact.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    audit.record(
        session,
        actor,
        "pool.recycled",
        subject_type="pool",
        subject_id=pool.id,
        changes={
            "recycled": [None, run.total],
            "by_reason": [None, dict(run.by_reason)],
            "batch": [None, batch],
            "contacts_released": [None, int(getattr(contacts, "rowcount", 0) or 0)],
        },
    )


def _remind(session: Session, pool: Pool, now: datetime, others: Sequence[int], run: PoolRun) -> None:
    """Tell each owner how many of their accounts the pool would take back within ``remind_days``
    (run after today's recycling, so what went today is no longer anyone's)."""
    if not pool.remind_days:
        return
    later = rules.eligible(pool, now + timedelta(days=pool.remind_days), others).subquery()
    statement = select(later.c.owner_id, func.count()).group_by(later.c.owner_id)
    for owner_id, count in session.execute(statement):
        message = Message(
            kind="pool_reminder",
            title_zh=f"{count} 个客户将在 {pool.remind_days} 天内退回「{pool.name}」公海",
            title_en=f"{count} of your accounts go back to pool '{pool.name}' within {pool.remind_days} days",
            body_zh="请跟进、创建商机或锁定这些客户，以免被回收。",
            body_en="Follow them up, open an opportunity or lock them to keep them.",
            link="/pools/mine",
        )
        if (
            notify(
                session,
                organization_id=pool.organization_id,
                user_id=owner_id,
                message=message,
                source_key=f"pool-reminder:{pool.id}",
            )
            is not None
        ):
            run.reminded_owners += 1
            run.reminded_accounts += int(count)
