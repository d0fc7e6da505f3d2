"""Outgoing webhooks: only to hosts the organization allowed, signed with HMAC-SHA256, sent once
after the undo window."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.models import PendingAction
from closeloop.core.clock import utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.db.session import Database
from closeloop.governance.events import service as events
from tests.factories import Tenant


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()


def test_webhook_goes_only_to_allowed_hosts_signed_and_once(
    db: Database, tenant: Tenant, receiver: tuple[int, list[tuple[dict[str, str], bytes]]]
) -> None:
    port, received = receiver
    manager = tenant["manager"].actor
    definition = {
        "trigger": {"kind": "event", "event": "deal.closed"},
        "conditions": [],
        "actions": [{"type": "webhook", "target": f"http://127.0.0.1:{port}/bi", "params": {}}],
    }
    with db.unit_of_work(manager) as session, pytest.raises(ValidationFailed) as refused:
        automation.create_rule(session, manager, name="bi", definition=definition, enabled=True)
    assert refused.value.problems[0].field == "actions.0.target"
    with db.unit_of_work(manager) as session:
        _, secret = automation.allow_webhook_host(session, manager, "127.0.0.1")
        automation.create_rule(session, manager, name="bi", definition=definition, enabled=True, undo_seconds=5)
        events.emit(session, manager, "deal.closed", subject_type="deal", subject_id=7)
    engine.drain(db)
    assert engine.run_due_actions(db) == 0
    assert received == []
    later = utcnow() + timedelta(seconds=6)
    assert engine.run_due_actions(db, now=later) == 1
    assert engine.run_due_actions(db, now=later) == 0
    [(headers, body)] = received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-closeloop-signature"], expected)
    assert orjson.loads(body)["record_id"] == 7
    with db.reading(None, system=True) as session:
        [pending] = session.scalars(
            select(PendingAction).where(PendingAction.id == int(headers["x-closeloop-delivery"]))
        )
    assert (pending.status, pending.result) == ("done", {"status_code": 204})
