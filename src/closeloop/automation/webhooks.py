"""Outgoing webhooks, delivered at least once.

When a webhook action's undo window ends, :func:`enqueue` writes a :class:`WebhookDelivery` (its
body fixed, its idempotency key drawn once). :func:`deliver_due` — run by the task queue right
away, at each retry's time, and every minute as a safety net — sends the deliveries that are due:

1. in one short transaction it *leases* them (moves ``next_attempt_at`` a few minutes ahead, with
   ``SKIP LOCKED`` on PostgreSQL), so two workers never send the same one at the same time;
2. it POSTs each outside any transaction, signed with HMAC-SHA256 under the host's secret, with
   the headers ``Idempotency-Key`` and ``X-Closeloop-Delivery``;
3. it records the outcome: a 2xx answer → ``delivered``; anything else → the next attempt after
   ``BASE_DELAY × 2^(attempts−1)`` (capped at ``MAX_DELAY``), or ``failed`` after ``MAX_ATTEMPTS``.

A worker that dies between sending and recording sends again when the lease ends: a receiver may
see a delivery twice (at least once, never zero times) and de-duplicates on the idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.automation.models import Decision, PendingAction, WebhookDelivery, WebhookHost
from closeloop.core.clock import utcnow
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database, after_commit

log = logging.getLogger("closeloop.automation.webhooks")

TIMEOUT = 10.0
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
#: how long a worker holds deliveries it is sending before another may take them
LEASE = timedelta(minutes=5)

#: called with (when the delivery is next due) after the transaction that made it due commits
_due_hooks: list[Callable[[datetime], None]] = []


def on_due(callback: Callable[[datetime], None]) -> None:
    if callback not in _due_hooks:
        _due_hooks.append(callback)


def _announce(session: Session | None, moment: datetime) -> None:
    for hook in _due_hooks:
        if session is None:
            hook(moment)
        else:
            after_commit(session, _call(hook, moment))


def _call(hook: Callable[[datetime], None], moment: datetime) -> Callable[[], None]:
    return lambda: hook(moment)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, 4 min … at most 6 h."""
    delay: timedelta = BASE_DELAY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_DELAY)


def enqueue(
    session: Session,
    *,
    organization_id: int,
    pending_action_id: int,
    decision_id: int,
    rule_id: int,
    rule_name: str,
    record_type: str,
    record_id: int,
    url: str,
    why: tuple[str, str],
    now: datetime,
) -> WebhookDelivery:
    """Queue a webhook (its host must be allowed now; it is checked again at each attempt)."""
    host = (urlsplit(url).hostname or "").lower()
    if _host(session, organization_id, host) is None:
        raise PermissionError(f"{host} is not an allowed webhook host")
    existing = session.scalar(select(WebhookDelivery).where(WebhookDelivery.pending_action_id == pending_action_id))
    if existing is not None:  # the pending action ran again after a crash: one delivery still
        return existing
    decision = session.get(Decision, decision_id)
    key = uuid.uuid4().hex
    delivery = WebhookDelivery(
        organization_id=organization_id,
        pending_action_id=pending_action_id,
        decision_id=decision_id,
        rule_id=rule_id,
        url=url,
        idempotency_key=key,
        body={
            "delivery_id": pending_action_id,
            "idempotency_key": key,
            "rule_id": rule_id,
            "rule": rule_name,
            "decision_id": decision_id,
            "record_type": record_type,
            "record_id": record_id,
            "event_type": decision.event_type if decision else None,
            "why": {"zh": why[0], "en": why[1]},
        },
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    session.flush()
    _announce(session, now)
    return delivery


def _host(session: Session, organization_id: int, host: str) -> WebhookHost | None:
    return session.scalar(
        select(WebhookHost).where(tenant_clause(organization_id, WebhookHost), WebhookHost.host == host)
    )


@dataclass(frozen=True, slots=True)
class _Attempt:
    id: int
    url: str
    body: bytes
    key: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    status_code: int | None
    error: str | None


def _send(attempt: _Attempt) -> _Outcome:
    if attempt.secret is None:
        return _Outcome(False, None, "the host is no longer allowed")
    try:
        response = httpx.post(
            attempt.url,
            content=attempt.body,
            headers={
                "Content-Type": "application/json",
                "X-Closeloop-Signature": signature(attempt.secret, attempt.body),
                "X-Closeloop-Delivery": str(orjson.loads(attempt.body)["delivery_id"]),
                "Idempotency-Key": attempt.key,
            },
            timeout=TIMEOUT,
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        return _Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= response.status_code < 300:
        return _Outcome(True, response.status_code, None)
    return _Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:300]}")


def deliver_due(database: Database, *, now: datetime | None = None, batch: int = 50) -> int:
    """Send the deliveries whose time has come; returns how many attempts were made."""
    made = 0
    while True:
        moment = now or utcnow()
        attempts: list[_Attempt] = []
        with database.unit_of_work(None, system=True) as session:
            statement = (
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= moment)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                statement = statement.with_for_update(skip_locked=True)
            for delivery in session.scalars(statement):
                host = _host(session, delivery.organization_id, (urlsplit(delivery.url).hostname or "").lower())
                delivery.next_attempt_at = moment + LEASE
                attempts.append(
                    _Attempt(
                        delivery.id,
                        delivery.url,
                        orjson.dumps(delivery.body),
                        delivery.idempotency_key,
                        host.secret if host is not None else None,
                    )
                )
        if not attempts:
            return made
        for attempt in attempts:
            outcome = _send(attempt)
            made += 1
            with database.unit_of_work(None, system=True) as session:
                _record(session, attempt.id, outcome, moment)


def _record(session: Session, delivery_id: int, outcome: _Outcome, now: datetime) -> None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.updated_at = now
    if outcome.ok:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
    else:
        delivery.last_error = outcome.error
        if delivery.attempts >= MAX_ATTEMPTS or outcome.error == "the host is no longer allowed":
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            _announce(session, delivery.next_attempt_at)
    if delivery.status != "pending":
        _settle(session, delivery)


def _settle(session: Session, delivery: WebhookDelivery) -> None:
    """Show the delivery's outcome on its pending action and decision."""
    from closeloop.automation.engine import _mirror

    pending = session.get(PendingAction, delivery.pending_action_id)
    decision = session.get(Decision, delivery.decision_id)
    if pending is None:
        return
    pending.result = delivery_body(delivery, brief=True)
    if delivery.status == "failed":
        pending.status = "failed"
    if decision is not None:
        _mirror(decision, pending)


def delivery_body(delivery: WebhookDelivery, *, brief: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "delivery_id": delivery.id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "idempotency_key": delivery.idempotency_key,
    }
    if brief:
        return body
    return body | {
        "pending_action_id": delivery.pending_action_id,
        "decision_id": delivery.decision_id,
        "rule_id": delivery.rule_id,
        "url": delivery.url,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.status == "pending" else None,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "created_at": delivery.created_at.isoformat(),
    }
