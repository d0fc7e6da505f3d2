"""``closeloop serve`` with its background worker: stopping the server stops the worker too, whether
it is stopped politely (SIGTERM, as systemd and Docker do) or killed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

CLOSELOOP = shutil.which("closeloop", path=str(Path(sys.executable).parent)) or "closeloop"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers: it is gone once its state says so
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and re.search(r"State:\s+Z", status.read_text()))


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_stopping_the_server_stops_its_worker(tmp_path: Path, stop: signal.Signals) -> None:
    environment = {
        **os.environ,
        "CLOSELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "CLOSELOOP_VAR_DIR": str(tmp_path / "var"),
    }
    environment.pop("CLOSELOOP_REDIS_URL", None)
    subprocess.run([CLOSELOOP, "migrate"], env=environment, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [CLOSELOOP, "serve", "--port", str(port), "--with-worker"], env=environment, stdout=log, stderr=log
        )
        try:
            up = _wait_until(lambda: _answers(port), 60)
            assert up, log_path.read_text(errors="replace")[-2000:]
            found = re.search(r"background worker started \(pid (\d+)\)", log_path.read_text(errors="replace"))
            assert found, log_path.read_text(errors="replace")
            worker = int(found.group(1))
            assert _alive(worker)

            server.send_signal(stop)
            server.wait(timeout=30)

            assert _wait_until(lambda: not _alive(worker), 30), "the worker outlived its server"
        finally:
            if server.poll() is None:
                server.kill()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
