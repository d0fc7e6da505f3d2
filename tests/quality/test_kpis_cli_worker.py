"""KPIs with history, the ``closeloop quality scan`` command, and the nightly job's wiring."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.core.clock import frozen_at
from closeloop.db.session import Database
from closeloop.worker import tasks
from tests.cli.conftest import cli
from tests.factories import Tenant
from tests.quality.conftest import T0, Scan
from tests.samples import Api

__all__ = ["cli"]


def test_kpis_per_owner_team_and_region_with_history(client: TestClient, tenant: Tenant, scan: Scan) -> None:
    rep, manager, vp = Api(client, tenant["rep"]), Api(client, tenant["manager"]), Api(client, tenant["sales_vp"])
    with frozen_at(T0) as advance:
        account = rep.create("accounts", {"name": "协和医院", "industry": "医院"})
        for index, confirmed in enumerate(["2026-03-01", "2026-02-01", "2025-01-01", None]):
            rep.create(
                "contacts",
                {
                    "name": f"联系人{index}",
                    "account_id": account["id"],
                    "mobile": "13800138000",
                    "title_confirmed_on": confirmed,
                },
            )
        rep2_account = Api(client, tenant["rep2"]).create("accounts", {"name": "瑞金医院", "industry": "医院"})
        Api(client, tenant["rep2"]).create(
            "contacts", {"name": "王", "account_id": rep2_account["id"], "title_confirmed_on": "2026-03-01"}
        )
        scan(tenant.organization_id)
        advance(timedelta(days=1))
        scan(tenant.organization_id)

    mine = rep.request("GET", "/quality/kpis", params={"group_by": "owner"}).json()["items"]
    assert [item["group_id"] for item in mine] == [tenant["rep"].user_id]
    metrics = mine[0]["metrics"]
    assert (metrics["contacts"], metrics["title_stale"], metrics["title_freshness"]) == (4, 2, 0.5)
    assert len(mine[0]["history"]) == 2

    team = manager.request("GET", "/quality/kpis", params={"group_by": "team"}).json()["items"]
    by_manager = {item["group_id"]: item["metrics"] for item in team}
    assert by_manager[tenant["manager"].user_id]["contacts"] == 5
    assert by_manager[tenant["manager"].user_id]["title_freshness"] == 0.6
    region = vp.request("GET", "/quality/kpis", params={"group_by": "region", "history": 0}).json()["items"]
    assert [(item["group_id"], item["metrics"]["contacts"], len(item["history"])) for item in region] == [
        (tenant.region_id, 5, 1)
    ]
    organization = vp.request("GET", "/quality/kpis", params={"group_by": "organization"}).json()["items"]
    assert organization[0]["metrics"]["defects"]["contact_title_stale"] == 2


@pytest.mark.committing
def test_the_cli_scans_and_prints_open_defects_by_rule(cli: CliRunner, db: Database, tenant: Tenant) -> None:
    from tests.apps import app_for
    from tests.conftest import Backend  # noqa: F401 - the cli fixture needs the backend

    del app_for
    with db.unit_of_work(tenant["rep"].actor) as session:
        from closeloop.crm.contacts import service as contact_service
        from closeloop.crm.contacts.schemas import ContactCreate

        made = contact_service.create_contact(
            session, tenant["rep"].actor, data=ContactCreate(name="李伟", mobile="13800138000")
        )
        made.mobile = "12345"  # as an older load left it: the forms and the API refuse it now

    first = cli.invoke(app, ["quality", "scan", "--org", str(tenant.organization_id)], env={"COLUMNS": "160"})
    again = cli.invoke(app, ["quality", "scan", "--org", str(tenant.organization_id), "--full"], env={"COLUMNS": "160"})

    assert first.exit_code == 0, first.output
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:6]]
        for line in first.stdout.splitlines()
        if line.count("│") >= 6
    }
    assert rows["phone_invalid"] == ["medium", "1", "1", "0"]
    assert rows["contact_orphan"] == ["medium", "1", "1", "0"]
    assert rows["account_duplicate"] == ["high", "0", "0", "0"]
    assert "full scan" in first.stdout
    assert again.exit_code == 0, again.output
    assert "0 defects opened, 0 resolved" in " ".join(again.stdout.split())


def test_the_nightly_job_is_scheduled_and_scans_every_organization(
    db: Database, tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = tasks.scan_quality_nightly_task.task_class()
    assert schedule.validate_datetime(datetime(2026, 5, 1, 3, 10))  # noqa: DTZ001 - Huey's crontab reads naive times
    assert not schedule.validate_datetime(datetime(2026, 5, 1, 3, 11))  # noqa: DTZ001
    with db.unit_of_work(tenant["rep"].actor) as session:
        from closeloop.crm.accounts import service as account_service
        from closeloop.crm.accounts.schemas import AccountCreate

        account_service.create_account(session, tenant["rep"].actor, data=AccountCreate(name="华山医院"))
    monkeypatch.setattr(tasks, "worker_database", lambda: db)

    opened = tasks.scan_quality_nightly()

    assert opened[tenant.organization_id] == 1  # the account without an industry
    assert opened[other_tenant.organization_id] == 0
    assert tasks.scan_quality_nightly() == dict.fromkeys(opened, 0)
