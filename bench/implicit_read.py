"""CPU time of demo.rep's account reads (read_one, a page of 50, the whole list) on a demo database:
``python bench/implicit_read.py sqlite:///var/demo.db`` (built by ``closeloop demo``). Run it again
with ``PYTHONPATH`` pointing at an older ``src`` to compare (docs/benchmarks.md, ninth session)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

import closeloop.all_models  # noqa: F401 - every mapper, for the relationships
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import connect
from closeloop.org import service as org_service
from closeloop.org.models import User


def best_cpu_ms(call: Callable[[], Any], repeat: int) -> float:
    """The least CPU time (ms) per call over three rounds of ``repeat`` calls."""
    rounds = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(repeat):
            call()
        rounds.append((time.process_time() - start) / repeat * 1e3)
    return min(rounds)


def main(url: str) -> None:
    database = connect(url)
    with database.reading(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == "demo.rep"))
        assert user is not None, "no demo.rep: build the demo first"
        actor = org_service.actor_for(session, user)
        own = session.scalar(select(Account.id).where(Account.owner_id == user.id, Account.deleted_at.is_(None)))
        others = (
            select(Opportunity.id)
            .join(Account, Account.id == Opportunity.account_id)
            .where(
                Opportunity.organization_id == actor.organization_id,
                Opportunity.deleted_at.is_(None),
                Account.deleted_at.is_(None),
                Account.owner_id != Opportunity.owner_id,
            )
        )
        mine = others.where(Opportunity.owner_id == user.id).subquery()
        open_ones = others.where(Opportunity.stage.not_in(("won", "lost"))).subquery()
        print("demo.rep's deals on accounts others own:", session.scalar(select(func.count()).select_from(mine)))
        print("open deals on accounts others own:", session.scalar(select(func.count()).select_from(open_ones)))
    assert own is not None
    with database.reading(actor) as session:
        print("accounts demo.rep reads:", sum(1 for _ in records.read_all(session, actor, ACCOUNTS, {})))
        for label, call, repeat in (
            ("read_one (own account)", lambda: records.read_one(session, actor, ACCOUNTS, own), 300),
            ("read_page (50 accounts)", lambda: records.read_page(session, actor, ACCOUNTS, {"limit": "50"}), 100),
            ("read_all (every account)", lambda: list(records.read_all(session, actor, ACCOUNTS, {})), 30),
        ):
            print(f"{label}: {best_cpu_ms(call, repeat):.3f} ms CPU")


if __name__ == "__main__":
    main(sys.argv[1])
