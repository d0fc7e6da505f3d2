"""The impact of a pool rule change before it is saved: how many accounts the next nightly run would
recycle, by reason, under the current rules and under the change — in the service (the same count
as the run itself), through the API's dry run, and on the settings page (preview, then a warning
that waits for "save anyway" when a change would take back more)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.pools import preview
from closeloop.pools import service as pools
from tests.factories import Tenant
from tests.pools.conftest import T0, World, days
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of


@pytest.mark.parametrize(
    ("now", "run"),
    [
        (datetime(2026, 3, 2, 1, 29, tzinfo=UTC), datetime(2026, 3, 2, 1, 30, tzinfo=UTC)),
        (datetime(2026, 3, 2, 1, 30, tzinfo=UTC), datetime(2026, 3, 3, 1, 30, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), datetime(2027, 1, 1, 1, 30, tzinfo=UTC)),
    ],
)
def test_the_next_run_is_the_next_nightly_moment(now: datetime, run: datetime) -> None:
    assert preview.next_run(now) == run


def _world_with_accounts(world: World) -> tuple[int, int, int]:
    world.pool(follow_up_days=30, opportunity_days=200)
    silent, followed, locked_away = world.account("沉默医院"), world.account("跟进医院"), world.account("新客户")
    world.activity(followed, T0 + days(8))
    world.activity(locked_away, T0 + days(9))
    world.advance(days(10))
    return silent, followed, locked_away


def test_the_preview_counts_what_the_next_run_takes_and_writes_nothing(world: World) -> None:
    silent, followed, _ = _world_with_accounts(world)
    vp = world.tenant["sales_vp"].actor
    with world.db.reading(vp) as session:
        pool_id = pools.list_pools(session, vp)[0].id
        seen = preview.recycle_preview(session, vp, pool_id=pool_id, changes={"follow_up_days": 0})
        unchanged = preview.recycle_preview(session, vp, pool_id=pool_id, changes={})

    assert seen["current"] == {"total": 0, "by_reason": {}}
    assert seen["proposed"] == {"total": 3, "by_reason": {"no_follow_up": 3}}
    assert seen["more"] == 3
    assert seen["next_run_at"] == "2026-03-13T01:30:00+00:00"
    assert unchanged["proposed"] == unchanged["current"]
    with world.db.reading(vp) as session:
        assert pools.get_pool(session, vp, pool_id).follow_up_days == 30  # nothing saved
    assert world.owner(silent) == world.tenant["rep"].user_id

    # the change saved, the run at the announced moment takes exactly what the preview said
    with world.db.unit_of_work(vp) as session:
        pools.update_pool(session, vp, pool_id, {"follow_up_days": 0})
    world.advance(datetime(2026, 3, 13, 1, 30, tzinfo=UTC) - (T0 + days(10)))
    assert [run.by_reason for run in world.recycle()] == [seen["proposed"]["by_reason"]]
    assert world.owner(followed) is None


def test_the_api_dry_run_previews_and_saves_nothing(client: TestClient, tenant: Tenant, world: World) -> None:
    _world_with_accounts(world)
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    pool = vp.request("GET", "/pools").json()["items"][0]

    dry = vp.request("PATCH", f"/pools/{pool['id']}", params={"dry_run": "true"}, json={"follow_up_days": 0})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["current"]["total"], dry.json()["proposed"]["by_reason"]) == (0, {"no_follow_up": 3})
    assert vp.request("GET", f"/pools/{pool['id']}").json()["follow_up_days"] == 30
    assert rep.request("PATCH", f"/pools/{pool['id']}", params={"dry_run": "true"}, json={}).status_code == 403
    bad = vp.request("PATCH", f"/pools/{pool['id']}", params={"dry_run": "true"}, json={"follow_up_days": -1})
    assert bad.status_code == 422

    saved = vp.request("PATCH", f"/pools/{pool['id']}", json={"follow_up_days": 5})
    assert saved.status_code == 200, saved.text
    assert saved.json()["recycle_preview"]["current"]["by_reason"] == {"no_follow_up": 1}


def test_the_settings_page_shows_the_impact_and_asks_before_taking_more(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    _world_with_accounts(world)
    vp = browser(client, db, tenant["sales_vp"])
    page = vp.get("/pools/settings")
    assert "closeloop pools" not in page.text  # no command line for business users
    assert "按当前规则将回收 0 个客户" in page.text
    token = csrf_of(page.text)
    pool_id = Api(client, tenant["sales_vp"]).request("GET", "/pools").json()["items"][0]["id"]
    form = {"csrf": token, "pool_id": str(pool_id), "name": "华东公海", "region_ids": str(tenant.region_id),
            "follow_up_days": "0", "opportunity_days": "200", "exempt_won": "1",
            "exempt_open_opportunities": "1"}  # fmt: skip

    looked = vp.post("/pools/settings", data=form | {"preview": "1"})
    assert looked.status_code == 200
    assert '<td data-reason="no_follow_up">3</td>' in looked.text
    assert f'id="follow_up_days-{pool_id}" name="follow_up_days" inputmode="numeric" value="0"' in looked.text
    assert "impact-warning" not in looked.text

    asked = vp.post("/pools/settings", data=form, follow_redirects=False)
    assert asked.status_code == 200  # not saved: the page says what it would do first
    assert "下次回收将多退回 3 个客户到公海" in asked.text
    assert "仍然保存" in asked.text
    assert Api(client, tenant["sales_vp"]).request("GET", f"/pools/{pool_id}").json()["follow_up_days"] == 30

    confirmed = vp.post("/pools/settings", data=form | {"confirm": "1"}, follow_redirects=False)
    assert confirmed.status_code == 303
    assert Api(client, tenant["sales_vp"]).request("GET", f"/pools/{pool_id}").json()["follow_up_days"] == 0
    assert "按当前规则将回收 3 个客户" in vp.get("/pools/settings").text
    # a change that takes back nothing more is saved at once
    calmer = vp.post("/pools/settings", data=form | {"follow_up_days": "60"}, follow_redirects=False)
    assert calmer.status_code == 303


def _accounts_without_a_pool(world: World) -> tuple[int, int, int]:
    silent, followed, recent = world.account("沉默医院"), world.account("跟进医院"), world.account("新客户")
    world.activity(followed, T0 + days(8))
    world.activity(recent, T0 + days(9))
    world.advance(days(10))
    return silent, followed, recent


def test_a_new_pool_previews_what_its_first_run_takes_and_writes_nothing(world: World) -> None:
    silent, followed, recent = _accounts_without_a_pool(world)
    vp = world.tenant["sales_vp"].actor
    values = {"name": "华东公海", "region_ids": [world.tenant.region_id], "follow_up_days": 5}
    with world.db.reading(vp) as session:
        seen = preview.creation_preview(session, vp, values=values)
        assert pools.list_pools(session, vp) == []  # nothing created

    # no pool takes these accounts today, so nothing goes back; the new pool's five days take the one
    # never followed up (the others were, two and one days before the preview)
    assert seen["pool_id"] is None
    assert seen["current"] == {"total": 0, "by_reason": {}}
    assert seen["proposed"] == {"total": 1, "by_reason": {"no_follow_up": 1}}
    assert seen["more"] == 1
    assert seen["next_run_at"] == "2026-03-13T01:30:00+00:00"

    # created, the run at the announced moment takes exactly what the preview said
    with world.db.unit_of_work(vp) as session:
        pools.create_pool(session, vp, values)
    world.advance(datetime(2026, 3, 13, 1, 30, tzinfo=UTC) - (T0 + days(10)))
    assert [run.by_reason for run in world.recycle()] == [seen["proposed"]["by_reason"]]
    assert (world.owner(silent), world.owner(followed), world.owner(recent)) == (
        None,
        world.tenant["rep"].user_id,
        world.tenant["rep"].user_id,
    )


def test_a_new_regional_pool_counts_what_the_all_regions_pool_takes_there_today(world: World) -> None:
    _accounts_without_a_pool(world)
    world.pool(name="全国公海", region_ids=[], follow_up_days=0)  # takes every account back today
    vp = world.tenant["sales_vp"].actor
    with world.db.reading(vp) as session:
        seen = preview.creation_preview(
            session, vp, values={"name": "华东公海", "region_ids": [world.tenant.region_id], "follow_up_days": 30}
        )
    assert seen["current"] == {"total": 3, "by_reason": {"no_follow_up": 3}}
    assert seen["proposed"] == {"total": 0, "by_reason": {}}
    assert seen["more"] == -3


def test_the_api_dry_run_previews_a_new_pool_and_creates_nothing(
    client: TestClient, tenant: Tenant, world: World
) -> None:
    _accounts_without_a_pool(world)
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    body = {"name": "华东公海", "region_ids": [tenant.region_id], "follow_up_days": 0}

    dry = vp.request("POST", "/pools", params={"dry_run": "true"}, json=body)
    assert dry.status_code == 200, dry.text
    assert dry.json()["pool_id"] is None
    assert (dry.json()["current"]["total"], dry.json()["proposed"]["by_reason"]) == (0, {"no_follow_up": 3})
    assert vp.request("GET", "/pools").json()["items"] == []
    assert rep.request("POST", "/pools", params={"dry_run": "true"}, json=body).status_code == 403
    bad = vp.request("POST", "/pools", params={"dry_run": "true"}, json=body | {"follow_up_days": -1})
    assert bad.status_code == 422

    created = vp.request("POST", "/pools", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["recycle_preview"]["current"] == dry.json()["proposed"]
    again = vp.request("POST", "/pools", params={"dry_run": "true"}, json=body | {"region_ids": []})
    assert again.status_code == 409  # the name is taken: refused as creating it would be


def test_the_settings_page_previews_a_new_pool_and_asks_before_taking_accounts(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    _accounts_without_a_pool(world)
    vp = browser(client, db, tenant["sales_vp"])
    token = csrf_of(vp.get("/pools/settings").text)
    form = {"csrf": token, "pool_id": "new", "name": "华东公海", "region_ids": str(tenant.region_id),
            "follow_up_days": "0", "exempt_won": "1", "exempt_open_opportunities": "1"}  # fmt: skip

    looked = vp.post("/pools/settings", data=form | {"preview": "1"})
    assert looked.status_code == 200
    assert "现有公海" in looked.text
    assert '<td data-reason="no_follow_up">3</td>' in looked.text
    assert 'id="follow_up_days-new" name="follow_up_days" inputmode="numeric" value="0"' in looked.text
    assert "impact-warning" not in looked.text

    asked = vp.post("/pools/settings", data=form, follow_redirects=False)
    assert asked.status_code == 200  # not created: the page says what it would do first
    assert "新建此公海后，下次回收将多退回 3 个客户到公海" in asked.text
    assert Api(client, tenant["sales_vp"]).request("GET", "/pools").json()["items"] == []

    confirmed = vp.post("/pools/settings", data=form | {"confirm": "1"}, follow_redirects=False)
    assert confirmed.status_code == 303
    assert [p["name"] for p in Api(client, tenant["sales_vp"]).request("GET", "/pools").json()["items"]] == ["华东公海"]
