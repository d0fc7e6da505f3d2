"""``closeloop worker health``: a real ``closeloop worker`` notes a heartbeat in the queue's storage
as it starts and every minute; the probe exits 0 while it is fresh and 1 before any worker ran and
once the worker is gone. On the SQLite queue, and on Redis when ``CLOSELOOP_TEST_REDIS_URL`` is set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.db.migrate import upgrade
from closeloop.worker import queue, tasks
from tests.conftest import REDIS_URL


@pytest.fixture(params=["sqlite", "redis"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A worker's settings, and this process's queue storage pointed at the same queue."""
    if request.param == "redis" and not REDIS_URL:
        pytest.skip("CLOSELOOP_TEST_REDIS_URL is not set")
    redis_url = str(REDIS_URL) if request.param == "redis" else None
    url = f"sqlite:///{tmp_path / 'closeloop.db'}"
    upgrade(url)
    name = f"closeloop-health-{uuid.uuid4().hex[:8]}"
    env = os.environ | {"CLOSELOOP_DATABASE_URL": url, "CLOSELOOP_VAR_DIR": str(tmp_path), "CLOSELOOP_QUEUE_NAME": name}
    env.pop("CLOSELOOP_REDIS_URL", None)
    if redis_url:
        env["CLOSELOOP_REDIS_URL"] = redis_url
    original = queue.huey.storage
    shared = queue.make_huey(redis_url=redis_url or "", sqlite_path=str(tmp_path / "queue.db"), name=name)
    queue.huey.storage = shared.storage
    try:
        yield env
    finally:
        queue.huey.storage = original


def test_the_probe_follows_a_real_worker(environment: dict[str, str]) -> None:
    cli = CliRunner()
    before = cli.invoke(app, ["worker", "health"])
    assert before.exit_code == 1, before.output
    assert "no heartbeat" in before.output

    worker = subprocess.Popen(
        [sys.executable, "-m", "closeloop.cli.main", "worker", "--workers", "1"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while tasks.last_heartbeat() is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        running = cli.invoke(app, ["worker", "health"])
        assert running.exit_code == 0, running.output
        assert f"(pid {worker.pid})" in " ".join(running.output.split())
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    time.sleep(2.2)
    gone = cli.invoke(app, ["worker", "health", "--max-age", "2"])
    assert gone.exit_code == 1, gone.output
    assert "no worker is taking tasks" in " ".join(gone.output.split())
    assert cli.invoke(app, ["worker", "health", "--max-age", "0"]).exit_code == 2  # said by the option itself
