"""Run calls at the same moment from several threads, each with a client of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi.testclient import TestClient
from starlette.types import ASGIApp

T = TypeVar("T")


def at_once(app: ASGIApp, calls: list[Callable[[TestClient], T]]) -> list[T]:
    """Start every call together (a barrier releases them), each on its own thread and TestClient."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[TestClient], T]) -> T:
        with TestClient(app, raise_server_exceptions=False) as client:
            barrier.wait(timeout=30)
            return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
