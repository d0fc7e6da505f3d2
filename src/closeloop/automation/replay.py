"""An organization's periodic checks run as of past hours: what the hourly check would have done
had it been running then — the engine itself (:func:`engine.run_scheduled_rule` for each scheduled
rule whose time the hour is, :func:`engine.run_due_actions` for the actions whose undo window had
ended), so the decisions, their deferred actions and undo windows are the ones the product makes,
dated at the hour. ``closeloop demo`` uses it so that a newcomer finds a decision history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from closeloop.automation import engine
from closeloop.core.clock import as_utc
from closeloop.db.session import Database


@dataclass(frozen=True, slots=True)
class Replayed:
    #: the hours checked, the rules' firings (decisions) and the deferred actions run
    hours: int
    fired: int
    ran: int


def replay_checks(database: Database, organization_id: int, *, since: datetime, until: datetime) -> Replayed:
    """Run ``organization_id``'s scheduled rules at every whole hour from ``since`` to ``until``
    (UTC), oldest first, each hour's due actions before its checks, as the worker's hourly check
    does; one transaction per rule and hour. Nothing is read from the wall clock."""
    hour = as_utc(since).replace(minute=0, second=0, microsecond=0)
    if hour < as_utc(since):
        hour += timedelta(hours=1)
    hours = fired = ran = 0
    with database.reading(None, system=True) as session:
        scheduled = list(engine.index_for(session, organization_id).scheduled)
    while hour <= as_utc(until):
        hours += 1
        ran += engine.run_due_actions(database, now=hour, organization_id=organization_id)
        for rule in scheduled:
            if engine.period_key(rule.trigger, hour) is None:
                continue
            with database.unit_of_work(None, system=True) as session:
                fired += engine.run_scheduled_rule(session, organization_id, rule, hour)
        hour += timedelta(hours=1)
    return Replayed(hours, fired, ran)
