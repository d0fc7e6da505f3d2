"""Outgoing webhooks: only to hosts the organization allowed (administrators decide), signed with
HMAC-SHA256, delivered at least once — retried with exponential backoff through the queue, every
attempt carrying the same idempotency key — and kept in a delivery log."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.automation import engine, webhooks
from closeloop.automation import service as automation
from closeloop.automation.models import Decision, PendingAction, WebhookDelivery
from closeloop.core.errors import Forbidden, ValidationFailed
from closeloop.db.session import Database
from closeloop.governance.events import service as events
from tests.factories import Tenant

Received = list[tuple[dict[str, str], bytes]]


class Receiver:
    """A local HTTP server that answers 503 to the first ``failures`` requests, then 204."""

    def __init__(self) -> None:
        self.received: Received = []
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.received) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()


def _rule(db: Database, tenant: Tenant, port: int, undo_seconds: int = 5) -> str:
    """Allow the local host (administrator), add a webhook rule (manager); returns the secret."""
    admin, manager = tenant["admin"].actor, tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": "deal.closed"},
        "conditions": [],
        "actions": [{"type": "webhook", "target": f"http://127.0.0.1:{port}/bi", "params": {}}],
    }
    with db.unit_of_work(manager) as session, pytest.raises(ValidationFailed) as refused:
        automation.create_rule(session, manager, name="bi", definition=definition, enabled=True)
    assert refused.value.problems[0].field == "actions.0.target"
    with db.unit_of_work(manager) as session, pytest.raises(Forbidden):
        automation.allow_webhook_host(session, manager, "127.0.0.1")
    with db.unit_of_work(admin) as session:
        _, secret = automation.allow_webhook_host(session, admin, "127.0.0.1")
    with db.unit_of_work(manager) as session:
        automation.create_rule(
            session, manager, name="bi", definition=definition, enabled=True, undo_seconds=undo_seconds
        )
    return secret


def _fire(db: Database, tenant: Tenant) -> datetime:
    """Fire the rule and let its undo window end; returns that moment (when the delivery is queued)."""
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        events.emit(session, manager, "deal.closed", subject_type="deal", subject_id=7)
    engine.drain(db)
    ended = datetime.now(UTC) + timedelta(seconds=6)  # measured after the firing: a slow machine is no matter
    assert engine.run_due_actions(db, now=ended) == 1  # the undo window ended: queued
    return ended


def _delivery(db: Database) -> WebhookDelivery:
    with db.reading(None, system=True) as session:
        [delivery] = session.scalars(select(WebhookDelivery))
        session.expunge(delivery)
    return delivery


def test_a_failing_receiver_gets_the_webhook_again_with_backoff_and_the_same_key(
    db: Database, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.failures = 2
    secret = _rule(db, tenant, receiver.port)
    start = _fire(db, tenant)
    assert webhooks.deliver_due(db, now=start) == 1  # 503
    assert webhooks.deliver_due(db, now=start) == 0  # not due again yet
    first = _delivery(db)
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 503)
    assert first.last_error is not None
    assert first.last_error.startswith("HTTP 503")
    assert first.next_attempt_at == start + webhooks.BASE_DELAY
    assert webhooks.deliver_due(db, now=start + timedelta(seconds=29)) == 0
    assert webhooks.deliver_due(db, now=start + timedelta(seconds=30)) == 1  # 503 again: wait twice as long
    assert _delivery(db).next_attempt_at == start + timedelta(seconds=30) + 2 * webhooks.BASE_DELAY
    assert webhooks.deliver_due(db, now=start + timedelta(seconds=90)) == 1  # 204
    assert webhooks.deliver_due(db, now=start + timedelta(days=1)) == 0  # delivered: never again
    done = _delivery(db)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == ("delivered", 3, 204, None)
    keys = {headers["idempotency-key"] for headers, _ in receiver.received}
    assert keys == {done.idempotency_key}
    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-closeloop-signature"], expected)
    assert orjson.loads(body)["record_id"] == 7
    assert orjson.loads(body)["idempotency_key"] == done.idempotency_key
    with db.reading(None, system=True) as session:
        pending = session.get(PendingAction, done.pending_action_id)
        decision = session.get(Decision, done.decision_id)
        assert pending is not None
        assert decision is not None
        assert (pending.status, pending.result["status"]) == ("done", "delivered")
        assert decision.actions[0]["result"]["status"] == "delivered"


def test_a_receiver_that_never_answers_ends_failed_after_the_last_attempt(
    db: Database, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.failures = 100
    _rule(db, tenant, receiver.port)
    moment = _fire(db, tenant)
    for _ in range(webhooks.MAX_ATTEMPTS):
        assert webhooks.deliver_due(db, now=moment) == 1
        moment = max(moment, _delivery(db).next_attempt_at)
    failed = _delivery(db)
    assert (failed.status, failed.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert webhooks.deliver_due(db, now=moment + timedelta(days=2)) == 0
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS
    assert webhooks.backoff(1) == timedelta(seconds=30)
    assert webhooks.backoff(30) == webhooks.MAX_DELAY
    with db.reading(None, system=True) as session:
        pending = session.get(PendingAction, failed.pending_action_id)
        assert pending is not None
        assert pending.status == "failed"


def test_a_removed_host_stops_queued_deliveries_and_the_log_is_scoped(
    db: Database, tenant: Tenant, receiver: Receiver, client: TestClient
) -> None:
    _rule(db, tenant, receiver.port)
    queued = _fire(db, tenant)
    hosts = client.get("/api/v1/webhook-hosts", headers=tenant["admin"].headers).json()["items"]
    assert [h["host"] for h in hosts] == ["127.0.0.1"]
    assert "secret" not in hosts[0]
    assert client.get("/api/v1/webhook-hosts", headers=tenant["manager"].headers).status_code == 403
    assert (
        client.delete(f"/api/v1/webhook-hosts/{hosts[0]['id']}", headers=tenant["manager"].headers).status_code == 403
    )
    assert client.delete(f"/api/v1/webhook-hosts/{hosts[0]['id']}", headers=tenant["admin"].headers).status_code == 204
    assert webhooks.deliver_due(db, now=queued) == 1
    assert receiver.received == []
    [entry] = client.get("/api/v1/webhook-deliveries", headers=tenant["manager"].headers).json()["items"]
    assert (entry["status"], entry["attempts"], entry["last_error"]) == ("failed", 1, "the host is no longer allowed")
    assert client.get("/api/v1/webhook-deliveries", headers=tenant["rep"].headers).json()["items"] == []
