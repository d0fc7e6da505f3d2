"""Incremental scans re-check what changed (and the name blocks it touched), nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from closeloop.config import settings
from closeloop.core.clock import frozen_at
from closeloop.crm.contacts.models import Contact
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.legacy import write_legacy
from tests.quality.conftest import T0, Scan
from tests.samples import Api


@pytest.fixture(autouse=True)
def _no_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-check nothing before the watermark: the frozen clock has no late commits to allow for
    (with the default overlap, records written in the ten minutes before it are re-checked too)."""
    monkeypatch.setattr(settings, "quality_overlap_seconds", 0)


def test_an_incremental_scan_rechecks_only_the_records_changed_since_the_last_one(
    client: TestClient, tenant: Tenant, scan: Scan
) -> None:
    rep = Api(client, tenant["rep"])
    with frozen_at(T0) as advance:
        broken = [rep.create("contacts", {"name": f"联系人{i}", "email": f"bad..{i}@example.com"}) for i in range(3)]
        full = scan(tenant.organization_id)
        assert full.full is True
        assert full.rules["email_invalid"].opened == 3
        assert full.rules["email_invalid"].checked is None  # everything

        advance(timedelta(hours=2))
        assert rep.patch("contacts", broken[0]["id"], {"email": "good@example.com"}).status_code == 200
        added = rep.create("contacts", {"name": "新联系人", "email": "also..bad@example.com"})
        advance(timedelta(hours=2))
        incremental = scan(tenant.organization_id)

        assert incremental.full is False
        assert incremental.changed["contact"] == 2
        assert incremental.rules["email_invalid"].checked == 2
        assert (incremental.rules["email_invalid"].opened, incremental.rules["email_invalid"].resolved) == (1, 1)
        assert incremental.rules["contact_mobile_missing"].checked == 2
        assert incremental.rules["contact_title_stale"].checked == 2  # time-dependent: changed + boundary crossed
        assert incremental.rules["contact_orphan"].checked is None  # reads other records: always whole
        open_ids = {
            d["subject_id"]
            for d in rep.request("GET", "/quality/defects", params={"rule": "email_invalid"}).json()["items"]
        }
        assert open_ids == {broken[1]["id"], broken[2]["id"], added["id"]}

        advance(timedelta(hours=2))
        idle = scan(tenant.organization_id)
        assert sum(idle.changed.values()) == 0
        assert idle.rules["email_invalid"].checked == 0
        assert (idle.opened, idle.resolved) == (0, 0)

        full_again = scan(tenant.organization_id, full=True)
        assert full_again.full is True
        assert full_again.rules["email_invalid"].checked is None
        assert (full_again.opened, full_again.resolved) == (0, 0)


def test_a_deleted_record_resolves_its_defects_in_an_incremental_scan(
    client: TestClient, db: Database, tenant: Tenant, scan: Scan
) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    with frozen_at(T0) as advance:
        contact = rep.create("contacts", {"name": "刘洋", "mobile": "13800138000"})
        write_legacy(db, Contact, contact["id"], mobile="999")
        scan(tenant.organization_id)
        advance(timedelta(hours=1))
        assert manager.request("DELETE", f"/contacts/{contact['id']}").status_code == 204
        advance(timedelta(hours=1))
        result = scan(tenant.organization_id)

    assert result.rules["phone_invalid"].resolved == 1
    assert rep.request("GET", "/quality/defects", params={"subject_id": contact["id"]}).json()["items"] == []


@pytest.mark.parametrize("renamed", ["older", "twin"])
def test_a_renamed_account_rechecks_only_its_old_and_new_name_blocks(
    client: TestClient, tenant: Tenant, scan: Scan, renamed: str
) -> None:
    rep = Api(client, tenant["rep"])
    with frozen_at(T0) as advance:
        accounts = {
            "older": rep.create("accounts", {"name": "华山医院", "industry": "医院"}),
            "twin": rep.create("accounts", {"name": "华山医院有限公司", "industry": "医院"}),
        }
        for name in ("仁济医院", "瑞金医院", "中山医院"):
            rep.create("accounts", {"name": name, "industry": "医院"})
        first = scan(tenant.organization_id)
        assert first.rules["account_duplicate"].opened == 1

        advance(timedelta(hours=1))
        assert rep.patch("accounts", accounts[renamed]["id"], {"name": "华山医院北院"}).status_code == 200
        advance(timedelta(hours=1))
        after = scan(tenant.organization_id)

    # the renamed account and the one that shared its old key; not the three others
    assert after.rules["account_duplicate"].checked == 2
    assert (after.rules["account_duplicate"].resolved, after.rules["account_duplicate"].open) == (1, 0)
