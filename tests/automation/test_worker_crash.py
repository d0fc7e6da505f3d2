"""Crash test of the outbox worker (AUTO-1): a real ``closeloop worker`` process is killed with
SIGKILL in the middle of a burst of 10,000 events and started again; every event ends processed
and its rule's action was done exactly once. On the SQLite queue, and on Redis when
``CLOSELOOP_TEST_REDIS_URL`` is set (CI sets it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from closeloop.automation import service as automation
from closeloop.automation.models import Decision
from closeloop.db.migrate import upgrade
from closeloop.db.session import Database, connect
from closeloop.governance.events import service as events
from closeloop.governance.events.models import OutboxEvent
from closeloop.org.notifications import Notification
from closeloop.worker import queue, tasks
from tests.conftest import REDIS_URL
from tests.factories import make_tenant

BURST = 10_000
CHUNK = 500

pytestmark = pytest.mark.slow


def _counts(database: Database) -> tuple[int, int, int]:
    with database.reading(None, system=True) as session:
        processed = session.scalar(
            select(func.count()).where(OutboxEvent.event_type == "burst.ping", OutboxEvent.processed_at.is_not(None))
        )
        decisions = session.scalar(select(func.count(Decision.id)))
        notices = session.scalar(select(func.count(Notification.id)).where(Notification.kind == "automation.notice"))
    return int(processed or 0), int(decisions or 0), int(notices or 0)


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "closeloop.cli.main", "worker", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(database: Database, until: int, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processed = _counts(database)[0]
        if processed >= until:
            return processed
        time.sleep(0.05)
    return _counts(database)[0]


@pytest.fixture(params=["sqlite", "redis"])
def queue_backend(request: pytest.FixtureRequest) -> tuple[str | None, str]:
    if request.param == "redis" and not REDIS_URL:
        pytest.skip("CLOSELOOP_TEST_REDIS_URL is not set")
    return (REDIS_URL if request.param == "redis" else None), f"closeloop-test-{uuid.uuid4().hex[:8]}"


def test_kill_9_mid_burst_leaves_every_event_processed_once(
    tmp_path: Path, queue_backend: tuple[str | None, str]
) -> None:
    redis_url, queue_name = queue_backend
    url = f"sqlite:///{tmp_path / 'closeloop.db'}"
    upgrade(url)
    database = connect(url)
    tenant = make_tenant(database)
    manager = tenant["manager"].actor
    with database.unit_of_work(manager) as session:
        automation.create_rule(
            session,
            manager,
            name="ping",
            definition={
                "trigger": {"kind": "event", "event": "burst.ping"},
                "conditions": [],
                "actions": [{"type": "notify", "target": "self", "params": {}}],
            },
            enabled=True,
        )
    env = os.environ | {
        "CLOSELOOP_DATABASE_URL": url,
        "CLOSELOOP_VAR_DIR": str(tmp_path),
        "CLOSELOOP_QUEUE_NAME": queue_name,
    }
    env.pop("CLOSELOOP_REDIS_URL", None)
    if redis_url:
        env["CLOSELOOP_REDIS_URL"] = redis_url
    # this process queues a drain after each commit, into the queue the worker reads
    test_queue = queue.make_huey(redis_url=redis_url or "", sqlite_path=str(tmp_path / "queue.db"), name=queue_name)
    original = queue.huey.storage
    queue.huey.storage = test_queue.storage
    events.on_commit(tasks._wake_drain)
    worker = _start(env)
    try:
        for start in range(0, BURST, CHUNK):
            with database.unit_of_work(manager) as session:
                events.emit_many(
                    session, manager, (("burst.ping", "burst", i, {}) for i in range(start, start + CHUNK))
                )
        reached = _wait(database, BURST // 5, timeout=120)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        halfway = _counts(database)
        assert 0 < halfway[0] < BURST, "the worker was to be killed in the middle of the burst"
        assert reached <= halfway[0]
        # what was done so far was done with its event marked, never one without the other
        assert halfway[0] == halfway[1] == halfway[2]
        worker = _start(env)
        assert _wait(database, BURST, timeout=300) == BURST
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        events._wakeups.remove(tasks._wake_drain)
        queue.huey.storage = original
    processed, decisions, notices = _counts(database)
    assert (processed, decisions, notices) == (BURST, BURST, BURST)
    with database.reading(None, system=True) as session:
        per_event = session.execute(
            select(Decision.event_id, func.count()).group_by(Decision.event_id).having(func.count() > 1)
        ).all()
        failed = session.scalar(select(func.count()).where(OutboxEvent.error.is_not(None)))
    assert per_event == []
    assert failed == 0
    database.dispose()
