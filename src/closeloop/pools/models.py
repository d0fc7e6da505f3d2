"""Pools (CN-1, 私海/公海): the pools of an organization, each account's place in them, every owner
change, and the organization's duplicate-protection setting (CN-2, 查重/撞单).

An account belongs to the pool whose regions hold the account's region (a pool without regions
takes every account no other pool takes). Owned accounts are their owner's private pool (私海);
accounts without an owner are the public pool (公海) of the pool they belong to.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, JSONDocument, UTCDateTime

#: the recycle rules' day counts a pool holds, and a tier may override (``tier_rules``)
RULE_FIELDS = ("follow_up_days", "opportunity_days", "deal_days", "protection_days")


class DuplicateMode(StrEnum):
    BLOCK = "block"
    WARN = "warn"
    OFF = "off"


class OwnerAction(StrEnum):
    CLAIMED = "claimed"
    RELEASED = "released"
    ASSIGNED = "assigned"
    RECYCLED = "recycled"
    #: the owner changed by an edit of the account, outside the pools
    TRANSFERRED = "transferred"


class Pool(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """A public pool with its scope, its admins, its recycle rules and its claim rules."""

    __tablename__ = "pools"
    __noun__ = "pool"
    __table_args__ = (Index("ix_pools_org_name", "organization_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: regions whose accounts (and members) the pool takes; empty: every account no other pool takes
    region_ids: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    admin_ids: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    #: who may claim: members of these departments and their sub-departments (none: the pool's regions)
    department_ids: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    follow_up_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    opportunity_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deal_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    protection_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: per tier ("A", "B", "C"): {rule field: days or null} overriding the pool's own
    tier_rules: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    remind_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exempt_won: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    exempt_open_opportunities: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    daily_claim_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    holding_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lock_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cooldown_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class PoolAccount(IdentifiedBy, OrganizationScoped, Base):
    """An account's pool state: since when its owner holds it (the protection period runs from
    there) and whether it is locked. Who gave it up last, and when (the cooldown), is the latest
    row of the owner-change history."""

    __tablename__ = "pool_accounts"
    __table_args__ = (Index("uq_pool_accounts_org_account", "organization_id", "account_id", unique=True),)

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    owned_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OwnerChange(IdentifiedBy, OrganizationScoped, Base):
    """One change of an account's owner made by the pools: who, when, why (claim, release, assign,
    recycle). Owner changes made elsewhere (an account's edit form, an import) are in the audit
    trail only."""

    __tablename__ = "account_owner_changes"
    __table_args__ = (
        Index("ix_account_owner_changes_account", "organization_id", "account_id", "id"),
        Index("ix_account_owner_changes_to", "organization_id", "to_owner_id", "action", "changed_at"),
        Index("ix_account_owner_changes_batch", "organization_id", "batch"),
    )

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    pool_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("pools.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    from_owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    to_owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(120), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    #: one recycle run of one pool (the rows its set-based UPDATE moved)
    batch: Mapped[str | None] = mapped_column(String(36), nullable=True)


class PoolSettings(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """The organization's duplicate protection: block, warn or off."""

    __tablename__ = "pool_settings"
    __table_args__ = (Index("uq_pool_settings_org", "organization_id", unique=True),)

    duplicate_mode: Mapped[str] = mapped_column(String(10), nullable=False, default=DuplicateMode.WARN)
