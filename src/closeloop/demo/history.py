"""Field history for the demo seller, so freshness monitoring (GOV-4) has something real to watch.

The bulk seed writes one summary audit entry per table, which gives the freshness monitor no
rhythm to learn. This step goes through the ordinary paths instead: the sales-ops admin asks for
two account fields (change requests signed off by the sales VP and the IT director), then, week
after week with the clock set to that week, account managers' updates go through the account
service, each writing its audit entry. One field keeps being reviewed up to last week; the
customer intent level stops changing 17 weeks (about four months) ago — the seed's story of an
upstream mapping that changed silently — and the freshness pass run at the end alerts its owner.

History is placed relative to the moment of seeding (freshness is judged against today), and is
drawn from its own ``random.Random(seed)``: the same shape on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.clock import frozen_at, utcnow
from closeloop.crm import changerequests
from closeloop.crm.accounts import service as accounts
from closeloop.crm.accounts.models import Account
from closeloop.crm.customfields import DefinitionCreate
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.quality import freshness

#: weeks of history, and the week (counted back from today) after which intent stopped changing
WEEKS = 30
INTENT_STOPPED = 17
#: accounts touched per week and field
PER_WEEK = 4

INTENT = {
    "record_type": "account",
    "name": "intent",
    "field_type": "choice",
    "label_zh": "客户意向等级",
    "label_en": "Customer intent level",
    "help_zh": "由市场线索系统每周同步",
    "help_en": "Synced weekly from the marketing lead system",
    "choices": [
        {"value": "high", "label_zh": "高", "label_en": "High"},
        {"value": "medium", "label_zh": "中", "label_en": "Medium"},
        {"value": "low", "label_zh": "低", "label_en": "Low"},
    ],
    "indexed": True,
}
REVIEWED = {
    "record_type": "account",
    "name": "last_review",
    "field_type": "date",
    "label_zh": "最近客户回顾",
    "label_en": "Last account review",
}


@dataclass(frozen=True, slots=True)
class HistoryResult:
    updates: int
    stale: list[str]
    alerted: dict[str, list[int]]


def _member(session: Session, organization_id: int, role: Role) -> User:
    user = session.scalar(
        select(User)
        .where(tenant_clause(organization_id, User), User.role == role.value, User.is_active)
        .order_by(User.id)
        .limit(1)
    )
    if user is None:  # pragma: no cover - the demo seeds every role
        raise LookupError(f"the demo has no {role.value}")
    return user


def add_field_history(db: Database, organization_id: int, *, seed: int, now: datetime | None = None) -> HistoryResult:
    """Define the two fields through signed-off change requests, write their weekly history
    through the account service, and run the freshness pass (which alerts the stale field's owner)."""
    today = now or utcnow()
    # whole days: a second seeding on the same day writes the very same history
    midnight = today.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data
    system = org_service.system_actor(organization_id, label="demo")
    with db.unit_of_work(system) as session:
        admin, vp, it = (
            org_service.actor_for(session, _member(session, organization_id, role))
            for role in (Role.ADMIN, Role.SALES_VP, Role.IT_DIRECTOR)
        )
        account_ids = list(
            session.scalars(
                select(Account.id).where(tenant_clause(organization_id, Account)).order_by(Account.id).limit(400)
            )
        )
        with frozen_at(midnight - timedelta(weeks=WEEKS + 1)) as advance:
            for body in (INTENT, REVIEWED):
                request = changerequests.request_create(
                    session, admin, DefinitionCreate.model_validate(body), reason="销售运营：客户分层与回顾节奏"
                )
                advance(timedelta(hours=2))
                changerequests.approve(session, vp, request.id)
                advance(timedelta(hours=3))
                changerequests.approve(session, it, request.id)
        updates = 0
        for weeks_back in range(WEEKS, 0, -1):
            monday = midnight - timedelta(weeks=weeks_back)
            for index, account_id in enumerate(rng.sample(account_ids, PER_WEEK)):
                custom: dict[str, object] = {"last_review": (monday + timedelta(hours=index)).date().isoformat()}
                if weeks_back >= INTENT_STOPPED:
                    custom["intent"] = rng.choice(("high", "medium", "low"))
                with frozen_at(monday + timedelta(hours=9 + index)):
                    accounts.update_account(session, vp, account_id=account_id, data={"custom": custom})
                updates += 1
    with db.unit_of_work(system) as session:
        run = freshness.alert(session, organization_id, now=today)
    return HistoryResult(
        updates=updates,
        stale=[status.key for status in run.statuses if status.status == "stale"],
        alerted=run.alerted,
    )


__all__ = ["HistoryResult", "add_field_history"]
