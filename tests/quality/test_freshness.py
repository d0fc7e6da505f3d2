"""Freshness monitoring (GOV-4): a field that stops changing when it used to alerts its owner; a
healthy field and a field that never changed regularly do not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.core.clock import frozen_at, utcnow
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.integrations.importing.feeds import SOURCES
from closeloop.integrations.importing.models import ImportJob, ImportStatus
from closeloop.org import service as org_service
from closeloop.org.notifications import Notification
from closeloop.quality import freshness
from closeloop.worker import tasks
from tests.api.test_custom_fields import Schema
from tests.cli.conftest import cli
from tests.factories import Tenant
from tests.quality.conftest import T0
from tests.samples import Api, assert_problem

__all__ = ["cli"]

WEEKS = 30
SILENCE = timedelta(days=122)  # "not updated for 4 months"


def _notices(db: Database, tenant: Tenant, user_key: str) -> list[Notification]:
    with db.reading(None, system=True) as session:
        return list(
            session.scalars(
                select(Notification).where(
                    tenant_clause(tenant.organization_id, Notification),
                    Notification.user_id == tenant[user_key].user_id,
                    Notification.kind == "freshness",
                )
            )
        )


@pytest.fixture
def history(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    """Thirty weeks of an account's life: the intent level (a custom field) and the phone change
    every week, the credit line (a finance field) every other week, the industry twice. Then the
    intent level stops — the upstream mapping changed — while the phone keeps changing for four
    more months. The IT director answers for the account's custom fields in the asset map."""
    schema = Schema(client, tenant)
    with frozen_at(T0 - timedelta(days=2)):
        schema.define(name="intent", field_type="text", label_zh="意向等级", label_en="Intent level")
        answered = Api(client, tenant["admin"]).request(
            "PUT",
            "/data-assets/field_group/account.custom",
            json={"accountable_user_id": tenant["it_director"].user_id, "responsible": ["rep"]},
        )
        assert answered.status_code == 200, answered.text
    rep, vp = Api(client, tenant["rep"]), Api(client, tenant["sales_vp"])
    with frozen_at(T0) as advance:
        account = rep.create("accounts", {"name": "协和医院", "industry": "医院"})
        for week in range(WEEKS):
            assert rep.patch(
                "accounts", account["id"], {"phone": f"010-6529{week:04d}", "custom": {"intent": f"L{week % 3}"}}
            ).is_success
            if week % 2 == 0:
                assert vp.patch("accounts", account["id"], {"credit_line": f"{1000 + week}.00"}).is_success
            if week in (3, 20):
                assert rep.patch("accounts", account["id"], {"industry": f"医院{week}"}).is_success
            advance(timedelta(days=7))
        stopped = utcnow()
        while utcnow() < stopped + SILENCE:
            assert rep.patch("accounts", account["id"], {"phone": f"010-6{utcnow():%m%d}000"}).is_success
            advance(timedelta(days=7))
    return {"account": account, "stopped": stopped, "now": stopped + SILENCE}


def test_a_field_that_stops_changing_alerts_its_owner_and_healthy_ones_do_not(
    db: Database, tenant: Tenant, history: dict[str, Any]
) -> None:
    with db.unit_of_work(None, system=True) as session:
        run = freshness.alert(session, tenant.organization_id, now=history["now"], sources=SOURCES)
    status = {item.key: item for item in run.statuses}
    intent = status["account.custom.intent"]
    assert (intent.status, intent.usual_gap_days, intent.limit_days) == ("stale", 7, 28)
    assert intent.silent_days is not None
    assert intent.silent_days >= 120
    assert intent.owner_id == tenant["it_director"].user_id
    assert intent.asset == "field_group/account.custom"
    assert intent.label_en == "Account · Intent level"
    assert status["account.phone"].status == "fresh"
    # the industry changed in two weeks only: no rhythm to miss, never alerted
    assert status["account.industry"].status == "irregular"
    # the credit line (every other week) also stopped four months ago: stale, and nobody answers for the
    # account's finance fields, so the sales VP hears of it
    assert status["account.credit_line"].status == "stale"
    assert set(run.alerted) == {"account.custom.intent", "account.credit_line"}
    assert run.alerted["account.custom.intent"] == [tenant["it_director"].user_id]
    assert run.alerted["account.credit_line"] == [tenant["sales_vp"].user_id]
    [notice] = _notices(db, tenant, "it_director")
    assert notice.source_key == "freshness:account.custom.intent"
    assert notice.link == "/quality#freshness"
    assert "Intent level" in notice.title_en
    assert "意向等级" in notice.title_zh
    assert _notices(db, tenant, "rep") == []

    # the same silence is not announced again while the notice is unread
    with db.unit_of_work(None, system=True) as session:
        again = freshness.alert(session, tenant.organization_id, now=history["now"] + timedelta(days=1))
    assert again.alerted == {}
    assert len(_notices(db, tenant, "it_director")) == 1


def test_a_feed_silent_within_its_rhythm_is_fresh(db: Database, tenant: Tenant, history: dict[str, Any]) -> None:
    # three weeks after the intent level stopped: within four usual gaps, nobody is told
    with db.unit_of_work(None, system=True) as session:
        run = freshness.alert(session, tenant.organization_id, now=history["stopped"] + timedelta(days=21))
    status = {item.key: item.status for item in run.statuses}
    assert status["account.custom.intent"] == "fresh"
    assert run.alerted == {}


def test_the_api_leaves_out_masked_fields_and_settings_override_the_rule(
    client: TestClient, db: Database, tenant: Tenant, history: dict[str, Any]
) -> None:
    rep, vp, admin = Api(client, tenant["rep"]), Api(client, tenant["sales_vp"]), Api(client, tenant["admin"])
    with frozen_at(history["now"]):
        mine = rep.request("GET", "/quality/freshness").json()["items"]
        keys = [item["key"] for item in mine]
        assert "account.custom.intent" in keys
        assert "account.credit_line" not in keys
        stale = vp.request("GET", "/quality/freshness", params={"status": "stale"}).json()["items"]
        assert {item["key"] for item in stale} == {"account.custom.intent", "account.credit_line"}
        assert_problem(vp.request("GET", "/quality/freshness", params={"status": "old"}), 422, field="status")

        # the rep may not tune the monitor; a schema manager may: mute one, give another a fixed limit
        assert rep.request("PUT", "/quality/freshness/account.phone", json={"muted": True}).status_code == 403
        muted = admin.request("PUT", "/quality/freshness/account.custom.intent", json={"muted": True})
        assert muted.status_code == 200, muted.text
        assert muted.json()["status"] == "muted"
        fixed = admin.request("PUT", "/quality/freshness/account.industry", json={"max_silent_days": 30})
        assert fixed.json()["status"] == "stale"
        assert fixed.json()["limit_days"] == 30
        assert admin.request("PUT", "/quality/freshness/account.nothing", json={}).status_code == 404
        assert_problem(
            admin.request("PUT", "/quality/freshness/account.phone", json={"factor": 0.5}), 422, field="factor"
        )
        history_entries = admin.request("GET", "/audit", params={"action": "freshness.configured"}).json()["items"]
        assert len(history_entries) >= 2
    with db.unit_of_work(None, system=True) as session:
        run = freshness.alert(session, tenant.organization_id, now=history["now"])
    assert set(run.alerted) == {"account.industry", "account.credit_line"}


@pytest.mark.committing
def test_cli_prints_every_feed_and_the_nightly_job_alerts(
    cli: CliRunner, db: Database, tenant: Tenant, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with frozen_at(history["now"]):
        arguments = ["quality", "freshness", "--org", str(tenant.organization_id), "--no-alert"]
        result = cli.invoke(app, arguments, env={"COLUMNS": "160"})
        assert result.exit_code == 0, result.output
        assert "account.custom.intent" in result.output
        assert "stale" in result.output
        assert "2 stale" in result.output
        assert "0 alerts sent" in result.output
        assert _notices(db, tenant, "it_director") == []
        monkeypatch.setattr(tasks, "worker_database", lambda: db)
        sent = tasks.check_freshness_nightly()
    assert sent[tenant.organization_id] == 2
    assert len(_notices(db, tenant, "it_director")) == 1


def test_import_feeds_are_one_feed_per_entity_and_source() -> None:
    assert freshness.import_feed("account", "crm-export-2026-10-01.csv") == "import:account:crm-export"
    assert freshness.import_feed("account", "uploads/CRM Export 20261008.xlsx") == "import:account:crm-export"
    assert freshness.import_feed("lead", "2026-10-01.csv") == "import:lead:file"


def test_an_import_feed_that_stops_arriving_alerts_the_record_types_owner(db: Database, tenant: Tenant) -> None:
    """A weekly account import from the CRM export, then nothing for two months: stale; a one-off
    import of another file is no feed to watch."""
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        for week in range(12):
            finished = T0 + timedelta(weeks=week)
            session.add(
                ImportJob(
                    organization_id=tenant.organization_id,
                    entity="account",
                    file_name=f"crm-export-{finished:%Y-%m-%d}.csv",
                    stored_path="gone",
                    dry_run=week == 5,  # a trial run writes nothing and is no change of the feed
                    status=ImportStatus.DONE,
                    total_rows=10,
                    processed_rows=10,
                    finished_at=finished,
                )
            )
        session.add(
            ImportJob(
                organization_id=tenant.organization_id,
                entity="lead",
                file_name="trade-show.xlsx",
                stored_path="gone",
                status=ImportStatus.DONE,
                total_rows=5,
                processed_rows=5,
                finished_at=T0,
            )
        )
    now = T0 + timedelta(weeks=11) + timedelta(days=60)
    with db.unit_of_work(None, system=True) as session:
        run = freshness.alert(session, tenant.organization_id, now=now, sources=SOURCES)
    status = {item.key: item for item in run.statuses}
    feed = status["import:account:crm-export"]
    assert (feed.kind, feed.status, feed.changes, feed.usual_gap_days) == ("import", "stale", 11, 7)
    assert status["import:lead:trade-show"].status == "irregular"
    assert run.alerted == {"import:account:crm-export": [tenant["sales_vp"].user_id]}
    # without the import package's source the feed is unknown (the audit trail has no import runs)
    with db.reading(None, system=True) as session:
        assert "import:account:crm-export" not in {
            item.key for item in freshness.evaluate(session, tenant.organization_id, now=now)
        }
