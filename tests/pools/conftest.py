"""Fixtures of the pool tests: a tenant with a pool, accounts made at a moment the test controls."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.core.clock import frozen_at
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import ActivityKind, Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.pools import service as pools
from closeloop.pools.models import Pool
from tests.apps import client
from tests.factories import Tenant

__all__ = ["client"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    db: Database
    tenant: Tenant
    advance: Any

    def pool(self, **values: Any) -> Pool:
        admin = self.tenant["admin"].actor
        with self.db.unit_of_work(admin) as session:
            values = {"name": "华东公海", "region_ids": [self.tenant.region_id], **values}
            pool = pools.create_pool(session, admin, values)
            session.expunge(pool)
        return pool

    def account(self, name: str, *, owner: str | None = "rep", tier: str | None = None, **values: Any) -> int:
        with self.db.unit_of_work(None, system=True) as session:
            account = Account(
                organization_id=self.tenant.organization_id,
                name=name,
                tier=tier,
                region_id=self.tenant.region_id,
                owner_id=self.tenant[owner].user_id if owner else None,
                **values,
            )
            session.add(account)
            session.flush()
            return account.id

    def contact(self, account_id: int, *, owner: str | None = "rep") -> int:
        with self.db.unit_of_work(None, system=True) as session:
            contact = Contact(
                organization_id=self.tenant.organization_id,
                name="联系人",
                account_id=account_id,
                owner_id=self.tenant[owner].user_id if owner else None,
            )
            session.add(contact)
            session.flush()
            return contact.id

    def contact_owner(self, contact_id: int) -> int | None:
        with self.db.reading(None, system=True) as session:
            contact = session.get(Contact, contact_id)
            assert contact is not None
            return contact.owner_id

    def activity(self, account_id: int, at: datetime) -> None:
        with self.db.unit_of_work(None, system=True) as session:
            session.add(
                Activity(
                    organization_id=self.tenant.organization_id,
                    kind=ActivityKind.CALL,
                    occurred_at=at,
                    account_id=account_id,
                    user_id=self.tenant["rep"].user_id,
                )
            )

    def opportunity(self, account_id: int, *, stage: Stage, opened: datetime, closed: datetime | None = None) -> None:
        with self.db.unit_of_work(None, system=True) as session:
            session.add(
                Opportunity(
                    organization_id=self.tenant.organization_id,
                    name="商机",
                    account_id=account_id,
                    stage=stage,
                    opened_at=opened,
                    closed_at=closed,
                    owner_id=self.tenant["rep"].user_id,
                )
            )

    def recycle(self, *, dry_run: bool = False) -> list[pools.PoolRun]:
        with self.db.unit_of_work(None, system=True) as session:
            return pools.recycle(session, self.tenant.organization_id, dry_run=dry_run)

    def owner(self, account_id: int) -> int | None:
        with self.db.reading(None, system=True) as session:
            account = session.get(Account, account_id)
            assert account is not None
            return account.owner_id


@pytest.fixture
def world(db: Database, tenant: Tenant) -> Iterator[World]:
    with frozen_at(T0) as advance:
        yield World(db, tenant, advance)


def days(n: float) -> timedelta:
    return timedelta(days=n)
