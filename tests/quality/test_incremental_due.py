"""Time-dependent rules run incrementally: as the clock moves, an incremental scan re-checks the
changed records and those whose due boundary was crossed since the last scan — and ends in exactly
the state a full scan finds (the full scan that follows opens and resolves nothing)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.config import settings
from closeloop.core.clock import frozen_at
from tests.factories import Tenant
from tests.quality.conftest import T0, Scan
from tests.samples import Api, new_account

DUE = ("opportunity_close_date_past", "contact_title_stale", "opportunity_stage_stale", "lead_unassigned")


@pytest.fixture(autouse=True)
def _no_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "quality_overlap_seconds", 0)


def test_incremental_time_rules_end_where_a_full_scan_does(client: TestClient, tenant: Tenant, scan: Scan) -> None:
    rep = Api(client, tenant["rep"])
    day = T0.date()
    with frozen_at(T0) as advance:
        account = new_account(rep, tenant["rep"].user_id)

        def deal(name: str, close: date) -> dict[str, Any]:
            body = {"name": name, "account_id": account["id"], "expected_close_date": close.isoformat()}
            return rep.create("opportunities", body)

        soon, later, _ = (
            deal("三天后", day + timedelta(days=3)),
            deal("十天后", day + timedelta(days=10)),
            deal("已过期", day - timedelta(days=1)),
        )
        logged = deal("有跟进", day + timedelta(days=90))
        rep.create(
            "activities",
            {"kind": "call", "subject": "回访", "opportunity_id": logged["id"], "occurred_at": T0.isoformat()},
        )
        for name, confirmed in (("将过期", day - timedelta(days=178)), ("新确认", day - timedelta(days=10))):
            rep.create("contacts", {"name": name, "title": "科主任", "title_confirmed_on": confirmed.isoformat()})
        rep.request("POST", "/leads", json={"name": "无人线索", "owner_id": None})

        first = scan(tenant.organization_id)
        assert first.rules["opportunity_close_date_past"].open == 1

        advance(timedelta(days=4))  # "三天后" slipped past; a title turned 180 days old; the lead waited
        second = scan(tenant.organization_id)
        assert second.full is False
        assert all(second.rules[rule].checked is not None for rule in DUE)  # not run whole
        assert second.rules["opportunity_close_date_past"].opened == 1
        assert second.rules["contact_title_stale"].opened == 1
        assert second.rules["lead_unassigned"].opened == 1

        advance(timedelta(hours=3))
        moved = rep.patch("opportunities", soon["id"], {"expected_close_date": (day + timedelta(days=30)).isoformat()})
        assert moved.status_code == 200, moved.text
        third = scan(tenant.organization_id)
        assert third.rules["opportunity_close_date_past"].resolved == 1
        assert third.rules["opportunity_close_date_past"].checked == 1  # only the moved deal

        advance(timedelta(days=28))  # stage changes (and the one call) age past 30 days
        fourth = scan(tenant.organization_id)
        assert fourth.rules["opportunity_stage_stale"].opened >= 4
        visit = (T0 + timedelta(days=32)).isoformat()
        rep.create(
            "activities", {"kind": "visit", "subject": "拜访", "opportunity_id": later["id"], "occurred_at": visit}
        )
        advance(timedelta(hours=1))
        fifth = scan(tenant.organization_id)
        assert fifth.rules["opportunity_stage_stale"].resolved == 1  # progress logged on "十天后"

        full = scan(tenant.organization_id, full=True)
        for rule in DUE:
            assert (rule, full.rules[rule].opened, full.rules[rule].resolved) == (rule, 0, 0)
            assert full.rules[rule].open == fifth.rules[rule].open
