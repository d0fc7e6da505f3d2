"""The pool pages in Chinese: the public pool with caps and claim buttons, a refused claim with its
message, my private pool with days to recycle, lock and release, pool settings, and the account
form's live duplicate warning."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.pools.conftest import World
from tests.web.test_settings_pages import browser, csrf_of


def test_claim_and_keep_accounts_through_the_pages(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    pool = world.pool(daily_claim_cap=1, holding_cap=5, follow_up_days=30)
    first, second = world.account("公海医院甲", owner=None), world.account("公海医院乙", owner=None)
    rep = browser(client, db, tenant["rep"])

    page = rep.get("/pools")
    assert page.status_code == 200, page.text
    assert "今日剩余领取" in page.text
    assert "1 / 1" in page.text
    assert "公海医院甲" in page.text
    token = csrf_of(page.text)
    claimed = rep.post(f"/pools/{pool.id}/claim/{first}", data={"csrf": token}, follow_redirects=False)
    assert claimed.status_code == 303
    assert world.owner(first) == tenant["rep"].user_id
    refused = rep.post(f"/pools/{pool.id}/claim/{second}", data={"csrf": token})
    assert refused.status_code == 409
    assert "今日领取已达上限" in refused.text
    assert world.owner(second) is None

    mine = rep.get("/pools/mine")
    assert "公海医院甲" in mine.text
    assert "距回收天数" in mine.text
    assert ">30<" in mine.text  # claimed just now: thirty days without follow-up to go
    assert rep.post(f"/pools/mine/{first}/lock", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert "已锁定" in rep.get("/pools/mine").text
    assert rep.post(f"/pools/mine/{first}/release", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert world.owner(first) is None

    assert "您不是任何公海的管理员" in rep.get("/pools/settings").text


def test_pool_settings_and_the_duplicate_warning(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    world.account("華為技術有限公司")
    vp = browser(client, db, tenant["sales_vp"])
    page = vp.get("/pools/settings")
    assert "新建公海" in page.text
    token = csrf_of(page.text)
    created = vp.post(
        "/pools/settings",
        data={
            "csrf": token,
            "pool_id": "new",
            "name": "全国公海",
            "follow_up_days": "45",
            "tier_A_follow_up_days": "90",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = vp.get("/pools/settings")
    assert 'value="45"' in page.text
    assert 'value="90"' in page.text
    bad = vp.post("/pools/settings", data={"csrf": token, "pool_id": "new", "name": "坏", "holding_cap": "很多"})
    assert bad.status_code == 422
    assert (
        vp.post("/pools/settings", data={"csrf": token, "duplicate_mode": "block"}, follow_redirects=False).status_code
        == 303
    )

    form = vp.get("/accounts/new")
    assert 'hx-post="/pools/duplicates"' in form.text
    warning = vp.post("/pools/duplicates", data={"name": "华为技术", "csrf": token}, headers={"X-CSRF-Token": token})
    assert warning.status_code == 200
    assert "该客户可能已存在" in warning.text
    assert "保存将被拒绝" in warning.text
    assert "華為技術有限公司" in warning.text
    assert vp.post("/pools/duplicates", data={"name": "北京大学"}, headers={"X-CSRF-Token": token}).text.strip() == ""


def test_a_blocked_duplicate_on_the_account_form_is_explained_in_chinese(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    world.account("瑞金医院有限公司")
    vp = browser(client, db, tenant["sales_vp"])
    token = csrf_of(vp.get("/pools/settings").text)
    vp.post("/pools/settings", data={"csrf": token, "duplicate_mode": "block"})
    form = vp.get("/accounts/new")
    refused = vp.post("/accounts/new", data={"csrf": csrf_of(form.text), "name": "瑞金醫院"})
    assert refused.status_code == 409, refused.text[:500]
    assert "重复：与客户「瑞金医院有限公司」" in refused.text
