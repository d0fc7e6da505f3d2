"""Recycle rules (CN-1): each condition, each exemption, tiers, the protection period, the reminder
before recycling — on a clock the test moves, through the set-based run, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from closeloop.crm.enums import Stage
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit.models import AuditEntry
from closeloop.org.notifications import Notification
from closeloop.pools import service as pools
from closeloop.pools.models import OwnerChange, PoolAccount
from tests.pools.conftest import T0, World, days


def _reasons(world: World) -> dict[int, str | None]:
    with world.db.reading(None, system=True) as session:
        rows = session.execute(
            select(OwnerChange.account_id, OwnerChange.reason).where(
                tenant_clause(world.tenant.organization_id, OwnerChange), OwnerChange.action == "recycled"
            )
        )
        return {row[0]: row[1] for row in rows}


def test_no_follow_up_returns_the_account_and_a_recent_activity_keeps_it(world: World) -> None:
    world.pool(follow_up_days=30)
    silent = world.account("沉默医院")
    followed = world.account("跟进医院")
    world.activity(followed, T0 + days(20))
    world.advance(days(31))

    assert [run.by_reason for run in world.recycle(dry_run=True)] == [{"no_follow_up": 1}]
    assert world.owner(silent) == world.tenant["rep"].user_id  # a dry run changes nothing

    runs = world.recycle()
    assert runs[0].total == 1
    assert world.owner(silent) is None
    assert world.owner(followed) == world.tenant["rep"].user_id
    assert _reasons(world) == {silent: "no_follow_up"}
    with world.db.reading(None, system=True) as session:
        change = session.scalar(select(OwnerChange).where(OwnerChange.account_id == silent))
        assert change is not None
        assert (change.from_owner_id, change.to_owner_id, change.actor_label) == (
            world.tenant["rep"].user_id,
            None,
            pools.SYSTEM_LABEL,
        )
        # the run writes the history and the accounts, nothing per account besides
        assert session.scalar(select(PoolAccount).where(PoolAccount.account_id == silent)) is None
        audited = session.scalar(
            select(AuditEntry).where(
                tenant_clause(world.tenant.organization_id, AuditEntry), AuditEntry.action == "pool.recycled"
            )
        )
        assert audited is not None
    assert world.recycle()[0].total == 0  # nothing left to take: a second run is a no-op


def test_no_opportunity(world: World) -> None:
    world.pool(opportunity_days=60)
    none = world.account("无商机")
    opened = world.account("有商机")
    world.opportunity(opened, stage=Stage.LOST, opened=T0 + days(50), closed=T0 + days(55))
    world.advance(days(61))
    world.recycle()
    assert _reasons(world) == {none: "no_opportunity"}
    world.advance(days(50))  # day 111: the lost opportunity was opened 61 days ago
    world.recycle()
    assert _reasons(world) == {none: "no_opportunity", opened: "no_opportunity"}


def test_deal_rule_alone(world: World) -> None:
    world.pool(deal_days=90, exempt_won=False)
    no_deal = world.account("未成交")
    dealt = world.account("已成交")
    world.opportunity(dealt, stage=Stage.WON, opened=T0 + days(10), closed=T0 + days(30))
    world.advance(days(91))
    world.recycle()
    assert _reasons(world) == {no_deal: "no_deal"}


def test_protection_period_shields_then_expires(world: World) -> None:
    world.pool(protection_days=15, follow_up_days=5, exempt_won=False)
    held = world.account("保护期客户")
    won = world.account("保护期内成交")
    world.opportunity(won, stage=Stage.WON, opened=T0 + days(1), closed=T0 + days(3))
    world.activity(won, T0 + days(14))
    world.advance(days(10))
    assert world.recycle()[0].total == 0  # five silent days, but still protected
    world.advance(days(6))
    world.recycle()
    assert _reasons(world) == {held: "protection_expired"}


def test_tiers_have_their_own_limits(world: World) -> None:
    world.pool(follow_up_days=30, tier_rules={"A": {"follow_up_days": 90}, "C": {"follow_up_days": None}})
    tier_a = world.account("A级客户", tier="A")
    tier_b = world.account("B级客户", tier="B")
    tier_c = world.account("C级客户", tier="C")
    untiered = world.account("无等级")
    world.advance(days(31))
    world.recycle()
    assert _reasons(world) == {tier_b: "no_follow_up", untiered: "no_follow_up"}
    world.advance(days(60))
    world.recycle()
    assert set(_reasons(world)) == {tier_a, tier_b, untiered}
    assert world.owner(tier_c) is not None


def test_won_open_and_locked_accounts_are_never_recycled(world: World) -> None:
    pool = world.pool(follow_up_days=10, lock_cap=5)
    won = world.account("赢单客户")
    world.opportunity(won, stage=Stage.WON, opened=T0, closed=T0 + days(1))
    open_deal = world.account("在谈客户")
    world.opportunity(open_deal, stage=Stage.NEGOTIATION, opened=T0)
    locked = world.account("锁定客户")
    plain = world.account("普通客户")
    rep = world.tenant["rep"].actor
    with world.db.unit_of_work(rep) as session:
        pools.set_lock(session, rep, account_id=locked, locked=True)
    world.advance(days(11))
    world.recycle()
    assert _reasons(world) == {plain: "no_follow_up"}
    admin = world.tenant["admin"].actor
    with world.db.unit_of_work(admin) as session:  # exemptions switched off: only the lock still holds
        pools.update_pool(session, admin, pool.id, {"exempt_won": False, "exempt_open_opportunities": False})
    world.recycle()
    assert set(_reasons(world)) == {plain, won, open_deal}
    assert world.owner(locked) == world.tenant["rep"].user_id


def test_the_owner_is_reminded_before_recycling_once(world: World) -> None:
    world.pool(follow_up_days=30, remind_days=5)
    first = world.account("即将回收一")
    world.account("即将回收二")
    world.advance(days(24))
    assert world.recycle()[0].reminded_owners == 0  # six days to go: not yet
    world.advance(days(2))
    run = world.recycle()[0]
    assert (run.total, run.reminded_owners, run.reminded_accounts) == (0, 1, 2)
    assert world.recycle()[0].reminded_owners == 0  # the unread reminder is not repeated
    with world.db.reading(None, system=True) as session:
        notice = session.scalar(select(Notification).where(Notification.user_id == world.tenant["rep"].user_id))
        assert notice is not None
        assert "2" in notice.title_zh
        assert "5 天" in notice.title_zh
    held = {h.account_id: h for h in _held(world)}
    assert held[first].days_left(T0 + days(26)) == 4
    assert held[first].reason == "no_follow_up"


def _held(world: World) -> list[pools.Held]:
    rep = world.tenant["rep"].actor
    with world.db.reading(rep) as session:
        return pools.private_accounts(session, rep)


def test_days_to_recycle_agree_with_the_run(world: World) -> None:
    world.pool(follow_up_days=30, protection_days=40, exempt_won=False)
    account = world.account("对账客户")
    world.activity(account, T0 + days(25))
    recycle_at = {h.account_id: h.recycle_at for h in _held(world)}[account]
    assert recycle_at == T0 + days(40)  # protection ends before the follow-up rule (day 55) would
    world.advance(days(40) - days(1 / 24))
    assert world.recycle()[0].total == 0
    world.advance(days(1 / 24))
    assert world.recycle()[0].total == 1


def test_a_recycled_claim_starts_the_previous_owners_cooldown(world: World) -> None:
    world.pool(follow_up_days=10, cooldown_days=5)
    account = world.account("回收后冷却", owner=None)
    rep = world.tenant["rep"].actor
    with world.db.unit_of_work(rep) as session:
        pools.claim(session, rep, account_id=account)
    world.advance(days(11))
    assert world.recycle()[0].by_reason == {"no_follow_up": 1}
    with world.db.unit_of_work(rep) as session, pytest.raises(pools.PoolRefusal) as refused:
        pools.claim(session, rep, account_id=account)
    assert refused.value.code == "cooldown"
    world.advance(days(5))
    with world.db.unit_of_work(rep) as session:
        pools.claim(session, rep, account_id=account)
    assert world.owner(account) == world.tenant["rep"].user_id


def test_an_owner_changed_by_editing_the_account_restarts_the_protection(world: World) -> None:
    from closeloop.crm.accounts import service as accounts

    world.pool(protection_days=15)
    moved = world.account("转交医院")
    stayed = world.account("原主医院")
    world.advance(days(10))
    manager = world.tenant["manager"].actor
    with world.db.unit_of_work(manager) as session:
        accounts.update_account(session, manager, account_id=moved, data={"owner_id": world.tenant["rep2"].user_id})
    world.advance(days(6))  # day 16: the original protection has run out, the transfer's has not
    assert _reasons(world) == {}
    world.recycle()
    assert _reasons(world) == {stayed: "protection_expired"}
    with world.db.reading(None, system=True) as session:
        transfer = session.scalar(
            select(OwnerChange).where(OwnerChange.account_id == moved, OwnerChange.action == "transferred")
        )
        assert transfer is not None
        assert (transfer.from_owner_id, transfer.to_owner_id) == (
            world.tenant["rep"].user_id,
            world.tenant["rep2"].user_id,
        )
    world.advance(days(10))  # day 26: the transfer's fifteen days (from day 10) have run out too
    world.recycle()
    assert _reasons(world) == {stayed: "protection_expired", moved: "protection_expired"}


def test_a_recycled_accounts_contacts_leave_its_previous_owner(world: World) -> None:
    world.pool(follow_up_days=30)
    silent, followed = world.account("沉默医院"), world.account("跟进医院")
    held, colleagues, kept = world.contact(silent), world.contact(silent, owner="rep2"), world.contact(followed)
    world.activity(followed, T0 + days(20))
    world.advance(days(31))

    assert world.recycle()[0].total == 1

    assert world.contact_owner(held) is None
    assert world.contact_owner(colleagues) == world.tenant["rep2"].user_id
    assert world.contact_owner(kept) == world.tenant["rep"].user_id
