"""Fixtures of the lead-to-cash and targets tests: a tenant with contracts owned by its rep, on a
clock the test moves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from closeloop.cash import service as cash
from closeloop.cash.daily import DailyRun, run_daily
from closeloop.cash.models import Collection
from closeloop.core.actor import Actor
from closeloop.core.clock import frozen_at
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ContractStatus
from closeloop.db.session import Database
from closeloop.org.notifications import Notification
from tests.apps import client
from tests.factories import Tenant

__all__ = ["client"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    db: Database
    tenant: Tenant
    advance: Any

    def actor(self, key: str) -> Actor:
        return self.tenant[key].actor

    def contract(self, amount: str = "100000.00", *, owner: str = "rep", signed_on: date = date(2026, 3, 1)) -> int:
        with self.db.unit_of_work(None, system=True) as session:
            contract = Contract(
                organization_id=self.tenant.organization_id,
                number=f"C-{uuid.uuid4().hex[:12]}",
                title="瑞金医院 影像系统",
                status=ContractStatus.ACTIVE,
                signed_on=signed_on,
                amount=Decimal(amount),
                owner_id=self.tenant[owner].user_id,
            )
            session.add(contract)
            session.flush()
            return contract.id

    def instalment(self, contract_id: int, amount: str, due_on: date, *, remind_days: int = 3) -> int:
        actor = self.actor("rep")
        with self.db.unit_of_work(actor) as session:
            return cash.add_instalment(
                session, actor, contract_id=contract_id, amount=Decimal(amount), due_on=due_on, remind_days=remind_days
            ).id

    def collect(self, instalment_id: int, amount: str, *, approve: bool = True, on: date | None = None) -> int:
        rep = self.actor("rep")
        with self.db.unit_of_work(rep) as session:
            collection = cash.record_collection(
                session, rep, instalment_id=instalment_id, amount=Decimal(amount), received_on=on or T0.date()
            )
            collection_id = collection.id
        if approve:
            cfo = self.actor("cfo")
            with self.db.unit_of_work(cfo) as session:
                cash.approve_collection(session, cfo, collection_id)
        return collection_id

    def statuses(self, contract_id: int, as_key: str = "rep") -> list[str]:
        actor = self.actor(as_key)
        with self.db.reading(actor) as session:
            return [str(line.status) for line in cash.plan(session, actor, contract_id=contract_id)]

    def amounts(self, contract_id: int) -> cash.Amounts:
        actor = self.actor("rep")
        with self.db.reading(actor) as session:
            return cash.amounts(session, actor, contract_id=contract_id)

    def run_daily(self) -> DailyRun:
        with self.db.unit_of_work(None, system=True) as session:
            return run_daily(session, self.tenant.organization_id)

    def notifications(self, key: str) -> list[tuple[str, str]]:
        with self.db.reading(None, system=True) as session:
            rows = session.execute(
                select(Notification.kind, Notification.title_en)
                .where(Notification.user_id == self.tenant[key].user_id)
                .order_by(Notification.id)
            )
            return [(row[0], row[1]) for row in rows]

    def collection(self, collection_id: int) -> Collection:
        with self.db.reading(None, system=True) as session:
            found = session.scalar(select(Collection).where(Collection.id == collection_id))
            assert found is not None
            session.expunge(found)
            return found


@pytest.fixture
def world(db: Database, tenant: Tenant) -> Iterator[World]:
    with frozen_at(T0) as advance:
        yield World(db, tenant, advance)
