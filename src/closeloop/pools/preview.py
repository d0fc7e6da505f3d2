"""What a pool's recycle rules would take back at the next nightly run — with the rules as they are
and as a change would make them, or as a new pool would have them — so that whoever edits or
creates a pool sees the impact before saving.

The proposed rules are applied to a detached copy of the pool (never added to the session, so
nothing is written), and counted with the same statement the run uses (:func:`rules.eligible`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Forbidden
from closeloop.pools import rules
from closeloop.pools import service as pools
from closeloop.pools.models import Pool

#: the nightly run's time of day (UTC, as the worker's schedule says: ``recycle_pools_daily_task``)
RUN_AT = time(1, 30)


def next_run(now: datetime) -> datetime:
    """The next nightly recycle run strictly after ``now``."""
    now = as_utc(now)
    today = datetime.combine(now.date(), RUN_AT, tzinfo=now.tzinfo)
    return today if today > now else today + timedelta(days=1)


def _counts(session: Session, pool: Pool, at: datetime, others: list[int]) -> dict[str, Any]:
    return _counted(session, rules.eligible(pool, at, others))


def _counted(session: Session, eligible: Select[Any]) -> dict[str, Any]:
    chosen = eligible.subquery()
    by_reason = {
        str(reason): int(count)
        for reason, count in session.execute(select(chosen.c.reason, func.count()).group_by(chosen.c.reason))
    }
    ordered = {reason: by_reason[reason] for reason in rules.REASONS if reason in by_reason}
    return {"total": sum(ordered.values()), "by_reason": ordered}


def _proposed(pool: Pool, changes: Mapping[str, Any]) -> Pool:
    values = {name: getattr(pool, name) for name in pools.POOL_FIELDS}
    values.update({name: value for name, value in changes.items() if name in pools.POOL_FIELDS})
    return Pool(id=pool.id, organization_id=pool.organization_id, **values)  # detached: never flushed


def recycle_preview(
    session: Session, actor: Actor, *, pool_id: int, changes: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """How many accounts the pool's next run would recycle, by reason: now (``current``) and under
    ``changes`` (``proposed``), with the run's time. The same permission and checks as saving the
    change; nothing is written."""
    pool = pools.get_pool(session, actor, pool_id)
    if not pools.can_manage(actor, pool):
        raise Forbidden("Only the pool's admins or sales ops (pools:manage) may change the pool")
    pools.check_values(session, actor, changes)
    at = next_run(now or utcnow())
    others = pools.other_regions(session, pool)
    current = _counts(session, pool, at, others)
    proposed = _counts(session, _proposed(pool, changes), at, others) if changes else current
    return {
        "pool_id": pool.id,
        "next_run_at": at.isoformat(),
        "current": current,
        "proposed": proposed,
        "more": proposed["total"] - current["total"],
    }


def creation_preview(
    session: Session, actor: Actor, *, values: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """What creating the pool ``values`` describe would do at the next run: the accounts it would
    take that today's pools recycle then (``current`` — a new regional pool takes its regions from
    the all-regions pool), and those its own rules would recycle (``proposed``). The same permission
    and checks as creating it; nothing is written."""
    pool = pools.new_pool(session, actor, values)
    at = next_run(now or utcnow())
    taken = pools.taken_regions(session, actor.organization_id)
    within = rules.in_pool_clause(pool, taken)
    counts: dict[str, int] = {}
    for existing in pools.list_pools(session, actor):
        if existing.is_active:
            taken_now = rules.eligible(existing, at, pools.other_regions(session, existing)).where(within)
            for reason, count in _counted(session, taken_now)["by_reason"].items():
                counts[reason] = counts.get(reason, 0) + count
    by_reason = {reason: counts[reason] for reason in rules.REASONS if reason in counts}
    current = {"total": sum(by_reason.values()), "by_reason": by_reason}
    proposed = _counts(session, pool, at, taken)
    return {
        "pool_id": None,
        "next_run_at": at.isoformat(),
        "current": current,
        "proposed": proposed,
        "more": proposed["total"] - current["total"],
    }
