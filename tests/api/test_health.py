"""The operator's probes: ``/healthz`` (the process answers) and ``/readyz`` (the database answers at
the code's migration head, and the task queue is reachable), without signing in."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from closeloop import __version__
from closeloop import app as app_module
from closeloop.config import Settings, settings


def test_liveness_and_readiness_answer_without_signing_in(client: TestClient) -> None:
    alive = client.get("/healthz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok", "version": __version__}

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "queue": "ok"}


def test_readiness_names_what_is_not_ready(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from closeloop.db import migrate

    monkeypatch.setattr(migrate, "state", lambda connection: (("5a8c2e1f1420",), ("ffffffffffff",)))
    monkeypatch.setattr(app_module, "_queue_check", lambda config: "unreachable (see the server log)")

    answer = client.get("/readyz")

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["migrations"] == "behind the code: run closeloop migrate"
    assert checks["queue"] == "unreachable (see the server log)"
    assert checks["database"] == "ok"


def test_the_queue_check_reaches_the_broker() -> None:
    assert app_module._queue_check(Settings(redis_url=None)) == "ok"
    assert app_module._queue_check(Settings(redis_url="redis://127.0.0.1:1/0")).startswith("unreachable")
    if settings.redis_url or os.environ.get("CLOSELOOP_TEST_REDIS_URL"):
        url = settings.redis_url or os.environ["CLOSELOOP_TEST_REDIS_URL"]
        assert app_module._queue_check(Settings(redis_url=url)) == "ok"
