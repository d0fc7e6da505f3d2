"""The field-work and report pages in Chinese and English: start a visit and check in through the
form without JavaScript (a refused non-image shown next to the field), the plan, the map, the
visits report; write and submit a daily report; the team page lists who has not submitted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from closeloop.config import settings
from closeloop.core.clock import frozen_at
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)


@pytest.fixture(autouse=True)
def _storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(settings, "var_dir", tmp_path)
    with frozen_at(datetime(2026, 11, 27, 2, 0, tzinfo=UTC)):
        yield


def test_check_in_plan_map_and_report_pages(client: TestClient, db: Database, tenant: Tenant) -> None:
    account = Api(client, tenant["rep"]).create(
        "accounts", {"name": "华山医院", "owner_id": tenant["rep"].user_id, "latitude": 31.2165, "longitude": 121.4365}
    )["id"]
    rep = browser(client, db, tenant["rep"])

    today = rep.get("/fieldwork")
    assert today.status_code == 200, today.text
    assert "外勤" in today.text
    assert "华山医院" in today.text
    token = csrf_of(today.text)
    started = rep.post("/fieldwork/visits", data={"account_id": str(account), "csrf": token}, follow_redirects=False)
    assert started.status_code == 303, started.text
    page_path = started.headers["location"]
    form = rep.get(page_path)
    assert 'accept="image/*"' in form.text
    assert 'capture="environment"' in form.text
    assert 'name="latitude" id="latitude" readonly' in form.text  # filled in by the browser, not typed
    assert 'name="longitude" id="longitude" readonly' in form.text
    assert 'name="manual_latitude"' in form.text
    assert "手动定位" in form.text
    assert "拜访签到" in form.text

    fields = {
        "csrf": token,
        "latitude": "31.2170",
        "longitude": "121.4370",
        "accuracy": "12",
        "address": "乌鲁木齐中路",
    }
    refused = rep.post(page_path, data=fields, files={"photos": ("a.jpg", b"GIF89a not allowed", "image/jpeg")})
    assert refused.status_code == 422
    assert "不是 JPEG、PNG 或 WebP 图片" in refused.text
    assert 'value="31.2170"' in refused.text  # what was typed stays
    done = rep.post(page_path, data=fields, files={"photos": ("a.png", PNG, "image/png")}, follow_redirects=False)
    assert done.status_code == 303, done.text
    result = rep.get(page_path)
    # 0.0005° north (55.6 m) and east (47.5 m at 31.2° N) of the account: √(55.6² + 47.5²) = 73 m
    assert "已签到" in result.text
    assert "73 米" in result.text
    photo = result.text.split('<img src="', 1)[1].split('"', 1)[0]
    assert rep.get(photo).content == PNG

    saved = rep.post(
        "/fieldwork/plans",
        data={"csrf": token, "user_id": str(tenant["rep"].user_id), "day": "2026-11-27",
              "account_id": [str(account), ""], "note": ["上午", ""]},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    plan = rep.get("/fieldwork/plans?day=2026-11-27")
    assert '<p id="plan-summary"><strong>1</strong> / 1 已完成</p>' in plan.text
    assert '<p class="muted" id="map-count">1 个客户在地图上</p>' in rep.get("/fieldwork/map").text
    report = rep.get("/fieldwork/report?start=2026-11-01&end=2026-11-30")
    assert report.status_code == 200
    assert "拜访统计" in report.text

    mine = rep.get("/reports/mine?kind=daily")
    assert 'data-figure="visits"' in mine.text
    assert "日报" in mine.text
    submitted = rep.post(
        "/reports/mine",
        data={"csrf": token, "kind": "daily", "day": "2026-11-27", "summary": "拜访华山医院", "action": "submit"},
        follow_redirects=False,
    )
    assert submitted.status_code == 303, submitted.text
    assert "已提交" in rep.get("/reports/mine?kind=daily&day=2026-11-27").text

    manager = browser(client, db, tenant["manager"], locale="en")
    team = manager.get("/reports/team?kind=daily&day=2026-11-27")
    assert team.status_code == 200, team.text
    assert "拜访华山医院" in team.text
    assert "Not submitted" in team.text
    assert "Rep2" in team.text


def test_a_hand_entered_position_and_another_days_visit_on_the_page(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    api = Api(client, tenant["rep"])
    account = api.create("accounts", {"name": "瑞金医院", "owner_id": tenant["rep"].user_id})["id"]
    today_visit = api.create("activities", {"kind": "visit", "account_id": account, "subject": "拜访"})["id"]
    yesterday = api.create("activities", {"kind": "visit", "account_id": account, "subject": "拜访",
                                          "occurred_at": "2026-11-26T03:00:00+00:00"})["id"]  # fmt: skip
    rep = browser(client, db, tenant["rep"])
    token = csrf_of(rep.get("/fieldwork").text)

    old = rep.get(f"/fieldwork/visits/{yesterday}/check-in")
    assert "只能在拜访当天签到" in old.text
    assert "2026年11月26日" in old.text
    assert 'id="check-in-form"' not in old.text
    late = rep.post(f"/fieldwork/visits/{yesterday}/check-in",
                    data={"csrf": token, "latitude": "31.2", "longitude": "121.4", "accuracy": "20"})  # fmt: skip
    assert late.status_code == 409

    path = f"/fieldwork/visits/{today_visit}/check-in"
    missing = rep.post(path, data={"csrf": token, "manual": "on", "manual_latitude": "91", "manual_longitude": "121"})
    assert missing.status_code == 422
    assert 'name="manual_latitude" id="manual_latitude" inputmode="decimal" value="91" aria-invalid="true"' in (
        missing.text
    )
    typed = {"csrf": token, "manual": "on", "manual_latitude": "31.2100", "manual_longitude": "121.4600",
             "latitude": "31.2000", "longitude": "121.4000", "accuracy": "20"}  # fmt: skip
    done = rep.post(path, data=typed, follow_redirects=False)
    assert done.status_code == 303, done.text

    manager = browser(client, db, tenant["manager"])
    shown = manager.get(path).text
    assert "31.21000" in shown  # the typed position, not the browser's
    assert '<span class="badge-pill warn" data-field="source">手动定位</span>' in shown
    assert "±20" not in shown
