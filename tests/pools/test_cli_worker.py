"""``closeloop pools recycle [--dry-run]`` and the daily recycle job's wiring (both commit)."""

from __future__ import annotations

from datetime import datetime

import pytest
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.worker import tasks
from tests.cli.conftest import cli
from tests.factories import Tenant
from tests.pools.conftest import World, days

__all__ = ["cli"]


@pytest.mark.committing
def test_the_command_prints_what_would_go_then_recycles(
    cli: CliRunner, world: World, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.pool(follow_up_days=30)
    silent = world.account("沉默客户")
    world.advance(days(31))

    dry = cli.invoke(app, ["pools", "recycle", "--dry-run", "--org", str(tenant.organization_id)])
    assert dry.exit_code == 0, dry.output
    assert "华东公海" in dry.output
    assert "1 accounts would go back" in dry.output
    assert world.owner(silent) is not None

    done = cli.invoke(app, ["pools", "recycle", "--org", str(tenant.organization_id)])
    assert done.exit_code == 0, done.output
    assert "1 accounts went back" in done.output
    assert world.owner(silent) is None

    schedule = tasks.recycle_pools_daily_task.task_class()
    assert schedule.validate_datetime(datetime(2026, 5, 1, 1, 30))  # noqa: DTZ001 - Huey's crontab reads naive times
    assert not schedule.validate_datetime(datetime(2026, 5, 1, 1, 31))  # noqa: DTZ001
    again = world.account("又一个沉默客户")
    world.advance(days(31))
    monkeypatch.setattr(tasks, "worker_database", lambda: world.db)
    assert tasks.recycle_pools_daily()[tenant.organization_id] == 1
    assert world.owner(again) is None
