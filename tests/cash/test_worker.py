"""The daily collection job's wiring: scheduled at 07:50, one transaction per organization, the
overdue alert raised once (it commits)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from closeloop.worker import tasks
from tests.cash.conftest import World
from tests.factories import Tenant


@pytest.mark.committing
def test_the_daily_job_alerts_each_organization_once(
    world: World, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = tasks.run_collections_daily_task.task_class()
    assert schedule.validate_datetime(datetime(2026, 5, 1, 7, 50))  # noqa: DTZ001 - Huey's crontab reads naive times
    assert not schedule.validate_datetime(datetime(2026, 5, 1, 7, 51))  # noqa: DTZ001
    contract = world.contract("20000.00")
    world.instalment(contract, "20000.00", date(2026, 3, 1))
    world.advance(timedelta(days=1))
    monkeypatch.setattr(tasks, "worker_database", lambda: world.db)

    assert tasks.run_collections_daily()[tenant.organization_id] == 1
    assert tasks.run_collections_daily()[tenant.organization_id] == 0
    assert [kind for kind, _ in world.notifications("manager")] == ["collection_overdue"]
