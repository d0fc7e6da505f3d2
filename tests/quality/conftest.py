"""Fixtures of the data-quality tests: the shared API client, and scans run as the worker runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from closeloop.api.routers import quality as quality_router
from closeloop.db.session import Database
from closeloop.quality.scanner import ScanResult
from closeloop.quality.service import run_scan
from tests.apps import client

__all__ = ["client"]

#: the moment the crafted records are made; scans run weeks later
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

Scan = Callable[..., ScanResult]


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Scans handed to the worker by ``POST /quality/scans`` (organization, scan id), not run."""
    handed: list[tuple[int, int]] = []
    monkeypatch.setattr(quality_router, "enqueue_scan", lambda org, scan: handed.append((org, scan)))
    return handed


@pytest.fixture
def scan(db: Database) -> Scan:
    """Scan an organization now, as the nightly job or the CLI does (in a unit of work of its own)."""

    def run(organization_id: int, *, full: bool = False, scan_id: int | None = None) -> ScanResult:
        return run_scan(db, organization_id, full=full, scan_id=scan_id)

    return run
