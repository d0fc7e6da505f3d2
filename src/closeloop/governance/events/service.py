"""Emitting outbox events and claiming them for processing.

:func:`emit` adds the event to the session: it commits or rolls back with the change. Services do
not call it themselves: :func:`closeloop.governance.audit.service.record` does, so every audited
change (``account.created``, ``opportunity.stage_changed``, ``activity.created`` …) is an event.

After a transaction that emitted events commits, the registered *wake-up* callbacks run (the worker
registers one that queues a drain task), so events are processed within moments; a periodic drain
and the drain at worker start catch anything whose wake-up was lost (a worker killed mid-task).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.db.session import after_commit, execute_core, ids_in
from closeloop.governance.events.models import OutboxEvent

_WOKEN = "closeloop.outbox_wake"
_wakeups: list[Callable[[], None]] = []

#: a failed event is tried this many times before it is left with its error
MAX_ATTEMPTS = 5


def on_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after every commit that emitted events (once per transaction)."""
    if callback not in _wakeups:
        _wakeups.append(callback)


def _wake() -> None:
    for callback in list(_wakeups):
        callback()


def _schedule_wake(session: Session) -> None:
    if not session.info.get(_WOKEN):
        session.info[_WOKEN] = True

        def wake() -> None:
            session.info.pop(_WOKEN, None)
            _wake()

        after_commit(session, wake)


def emit(
    session: Session,
    actor: Actor,
    event_type: str,
    *,
    subject_type: str,
    subject_id: int | None,
    payload: dict[str, Any] | None = None,
    organization_id: int | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Record ``event_type`` (``"noun.verb"``) about a subject, in the session's transaction."""
    session.add(
        OutboxEvent(
            organization_id=organization_id if organization_id is not None else actor.organization_id,
            event_type=event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=payload or {},
            actor_kind=actor.kind.value,
            actor_user_id=actor.user_id,
            occurred_at=occurred_at or utcnow(),
            attempts=0,
        )
    )
    _schedule_wake(session)


def emit_many(
    session: Session,
    actor: Actor,
    events: Iterable[tuple[str, str, int | None, dict[str, Any]]],
    *,
    organization_id: int | None = None,
    bulk_insert: Callable[[Session, Table, list[dict[str, Any]]], None] | None = None,
) -> int:
    """Record many events (``(event_type, subject_type, subject_id, payload)``) in one statement
    (``bulk_insert``: a faster writer, as for :func:`closeloop.governance.audit.service.record_many`)."""
    now = utcnow()
    org = organization_id if organization_id is not None else actor.organization_id
    rows = [
        {
            "organization_id": org,
            "event_type": event_type,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "payload": payload,
            "actor_kind": actor.kind.value,
            "actor_user_id": actor.user_id,
            "occurred_at": now,
            "attempts": 0,
        }
        for event_type, subject_type, subject_id, payload in events
    ]
    if rows:
        if bulk_insert is not None:
            table: Table = OutboxEvent.__table__  # type: ignore[assignment]
            bulk_insert(session, table, rows)
        else:
            session.execute(insert(OutboxEvent), rows)
        _schedule_wake(session)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event taken for processing (plain values: it outlives the claiming query)."""

    id: int
    organization_id: int
    event_type: str
    subject_type: str
    subject_id: int | None
    payload: dict[str, Any]
    actor_kind: str
    actor_user_id: int | None
    occurred_at: datetime
    attempts: int


def claim(session: Session, *, limit: int) -> list[Claimed]:
    """The oldest unprocessed events, locked for this transaction (other workers on PostgreSQL skip
    them; SQLite's write lock serializes workers). Marking them done happens in the same transaction,
    so they are processed exactly once, whatever crashes."""
    columns = (
        OutboxEvent.id,
        OutboxEvent.organization_id,
        OutboxEvent.event_type,
        OutboxEvent.subject_type,
        OutboxEvent.subject_id,
        OutboxEvent.payload,
        OutboxEvent.actor_kind,
        OutboxEvent.actor_user_id,
        OutboxEvent.occurred_at,
        OutboxEvent.attempts,
    )
    statement: Any = (
        select(*columns)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.attempts < MAX_ATTEMPTS)
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    rows: list[Any] = list(execute_core(session, statement))
    return [Claimed(r[0], r[1], r[2], r[3], r[4], dict(r[5] or {}), r[6], r[7], r[8], r[9]) for r in rows]


def mark_processed(session: Session, event_ids: Sequence[int]) -> None:
    # a Core statement: the drain's session holds thousands of loaded records that an ORM bulk
    # update would look through for outbox rows to synchronise (it holds none)
    if event_ids:
        execute_core(
            session,
            update(OutboxEvent.__table__)  # type: ignore[arg-type]
            .where(ids_in(session, OutboxEvent.__table__.c.id, event_ids))
            .values(processed_at=utcnow()),
        )


def mark_failed(session: Session, event_id: int, error: str) -> None:
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == event_id)
        .values(attempts=OutboxEvent.attempts + 1, error=error[:4000])
    )
