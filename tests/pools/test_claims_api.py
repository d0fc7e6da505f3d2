"""Claiming, releasing, assigning and locking through the API (CN-1): caps and cooldown refuse with
a clear message in both languages; every owner change is logged; other tenants see nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.pools.conftest import World, days
from tests.samples import Api, assert_problem


def _pool(client: TestClient, tenant: Tenant, **values: Any) -> dict[str, Any]:
    ops = Api(client, tenant["sales_vp"])
    response = ops.request("POST", "/pools", json={"name": "华东公海", "region_ids": [tenant.region_id], **values})
    assert response.status_code == 201, response.text
    pool: dict[str, Any] = response.json()
    return pool


def _claim(api: Api, pool: dict[str, Any], account_id: int) -> Any:
    return api.request("POST", f"/pools/{pool['id']}/accounts/{account_id}/claim", json={"reason": "有需求"})


def test_claim_caps_cooldown_and_the_owner_history(client: TestClient, tenant: Tenant, world: World) -> None:
    pool = _pool(client, tenant, daily_claim_cap=2, holding_cap=3, cooldown_days=7)
    rep = Api(client, tenant["rep"])
    held = world.account("已持有客户")
    free = [world.account(f"公海客户{n}", owner=None) for n in range(4)]

    listing = rep.request("GET", f"/pools/{pool['id']}/accounts", params={"limit": 3})
    assert listing.status_code == 200, listing.text
    assert [item["id"] for item in listing.json()["items"]] == free[::-1][:3]
    assert listing.json()["next_cursor"] == free[1]
    assert (
        rep.request("GET", f"/pools/{pool['id']}/accounts", params={"cursor": free[1]}).json()["items"][0]["id"]
        == free[0]
    )

    assert _claim(rep, pool, free[0]).status_code == 200
    assert _claim(rep, pool, free[1]).status_code == 200
    refused = assert_problem(_claim(rep, pool, free[2]), 409)
    assert refused["code"] == "daily_claim_cap"
    assert "2 of 2" in refused["detail"]
    assert refused["message_zh"].startswith("今日领取已达上限")
    caps = rep.request("GET", f"/pools/{pool['id']}").json()["my_caps"]
    assert (caps["claims_left_today"], caps["holding"], caps["holding_cap"]) == (0, 3, 3)

    world.advance(days(1))  # a new day: the daily cap is free again, the holding cap is not
    refused = assert_problem(_claim(rep, pool, free[2]), 409)
    assert refused["code"] == "holding_cap"
    assert "3 of 3" in refused["detail"]
    assert "私海客户数已达上限" in refused["message_zh"]

    released = rep.request("POST", f"/pools/accounts/{free[0]}/release", json={"reason": "无意向"})
    assert released.status_code == 200, released.text
    refused = assert_problem(_claim(rep, pool, free[0]), 409)
    assert refused["code"] == "cooldown"
    assert "7-day cooldown" in refused["detail"]
    assert "冷却期" in refused["message_zh"]
    assert _claim(Api(client, tenant["rep2"]), pool, free[3]).status_code == 200  # someone else may
    world.advance(days(7))
    assert _claim(rep, pool, free[0]).status_code == 200

    history = rep.request("GET", f"/pools/accounts/{free[0]}/owner-changes").json()["items"]
    assert [(h["action"], h["reason"]) for h in history] == [
        ("claimed", "有需求"),
        ("released", "无意向"),
        ("claimed", "有需求"),
    ]
    assert all(h["actor"] for h in history)
    assert held  # the account held from the start counted in the holding cap


def test_lock_cap_and_assignment(client: TestClient, tenant: Tenant, world: World) -> None:
    pool = _pool(client, tenant, lock_cap=1, holding_cap=1)
    rep = Api(client, tenant["rep"])
    first, second = world.account("锁定一"), world.account("锁定二")
    assert rep.request("POST", f"/pools/accounts/{first}/lock", json={"locked": True}).status_code == 200
    refused = assert_problem(rep.request("POST", f"/pools/accounts/{second}/lock", json={"locked": True}), 409)
    assert refused["code"] == "lock_cap"
    assert "锁定客户数已达上限" in refused["message_zh"]
    mine = {item["account_id"]: item for item in rep.request("GET", "/pools/private").json()["items"]}
    assert mine[first]["locked"] is True
    assert mine[second]["locked"] is False

    free = world.account("待分配", owner=None)
    assert (
        rep.request("POST", f"/pools/accounts/{free}/assign", json={"user_id": tenant["rep2"].user_id}).status_code
        == 403
    )
    ops = Api(client, tenant["sales_vp"])
    assigned = ops.request("POST", f"/pools/accounts/{free}/assign", json={"user_id": tenant["rep2"].user_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["owner_id"] == tenant["rep2"].user_id
    other = world.account("再分配", owner=None)
    refused = assert_problem(
        ops.request("POST", f"/pools/accounts/{other}/assign", json={"user_id": tenant["rep2"].user_id}), 409
    )
    assert refused["code"] == "holding_cap"
    assert pool["id"]


def test_pools_stay_inside_their_organization(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, partner: Tenant, world: World
) -> None:
    pool = _pool(client, tenant)
    account = world.account("本组织公海", owner=None)
    foreign = Api(client, other_tenant["admin"])
    assert foreign.request("GET", f"/pools/{pool['id']}").status_code == 404
    assert foreign.request("GET", "/pools").json()["items"] == []
    assert foreign.request("POST", f"/pools/{pool['id']}/accounts/{account}/claim", json={}).status_code == 404
    assert Api(client, partner["partner_user"]).request("GET", "/pools").status_code == 403
    rep = Api(client, tenant["rep"])
    assert rep.request("PATCH", f"/pools/{pool['id']}", json={"holding_cap": 5}).status_code == 403
    ops = Api(client, tenant["sales_vp"])
    named = ops.request("PATCH", f"/pools/{pool['id']}", json={"admin_ids": [tenant["manager"].user_id]})
    assert named.status_code == 200, named.text
    manager = Api(client, tenant["manager"])  # a pool admin changes the rules, not the admins
    assert manager.request("PATCH", f"/pools/{pool['id']}", json={"holding_cap": 5}).json()["holding_cap"] == 5
    again = manager.request("PATCH", f"/pools/{pool['id']}", json={"admin_ids": [tenant["rep"].user_id]})
    assert_problem(again, 403, field="admin_ids")
    assert rep.request("POST", "/pools", json={"name": "我的公海"}).status_code == 403
    overlap = ops.request("POST", "/pools", json={"name": "重叠", "region_ids": [tenant.region_id]})
    assert_problem(overlap, 422, field="region_ids", code="overlap")


def test_a_pool_scoped_to_a_department_lets_its_members_and_those_below_claim(
    client: TestClient, tenant: Tenant, world: World
) -> None:
    from closeloop.org.models import Department, User

    with world.db.unit_of_work(None, system=True) as session:
        sales = Department(organization_id=tenant.organization_id, name="销售中心")
        session.add(sales)
        session.flush()
        group = Department(organization_id=tenant.organization_id, name="华东销售1组", parent_id=sales.id)
        other = Department(organization_id=tenant.organization_id, name="渠道部")
        session.add_all([group, other])
        session.flush()
        session.get_one(User, tenant["rep"].user_id).department_id = group.id
        session.get_one(User, tenant["rep2"].user_id).department_id = other.id
        sales_id = sales.id
    assert_problem(
        Api(client, tenant["sales_vp"]).request("POST", "/pools", json={"name": "错", "department_ids": [10**9]}), 422
    )
    pool = _pool(client, tenant, department_ids=[sales_id])
    assert pool["department_ids"] == [sales_id]
    free = [world.account(f"部门公海{n}", owner=None) for n in range(2)]
    refused = assert_problem(_claim(Api(client, tenant["rep2"]), pool, free[0]), 409)
    assert refused["code"] == "not_a_member"
    assert "部门" in refused["message_zh"]
    assert _claim(Api(client, tenant["rep"]), pool, free[0]).status_code == 200  # 华东销售1组 is below 销售中心


def test_the_accounts_contacts_go_to_the_pool_and_to_whoever_claims_it(
    client: TestClient, tenant: Tenant, world: World
) -> None:
    """A released account's contacts leave the rep who gave it up (the point of a public pool);
    the next claimant takes them with the account."""
    pool = _pool(client, tenant)
    rep, rep2 = Api(client, tenant["rep"]), Api(client, tenant["rep2"])
    account = world.account("释放客户")
    contact = rep.create("contacts", {"name": "赵主任", "account_id": account})

    assert rep.request("POST", f"/pools/accounts/{account}/release", json={"reason": "无意向"}).status_code == 200
    assert rep.request("GET", f"/contacts/{contact['id']}").status_code == 404

    assert _claim(rep2, pool, account).status_code == 200
    assert rep2.read("contacts", contact["id"])["owner_id"] == tenant["rep2"].user_id


def test_a_claim_and_a_release_need_no_body(client: TestClient, tenant: Tenant, world: World) -> None:
    pool = _pool(client, tenant)
    rep = Api(client, tenant["rep2"])
    account = world.account("无理由领取", owner=None)

    assert rep.request("POST", f"/pools/{pool['id']}/accounts/{account}/claim").status_code == 200
    assert rep.request("POST", f"/pools/accounts/{account}/release").status_code == 200
    history = Api(client, tenant["sales_vp"]).request("GET", f"/pools/accounts/{account}/owner-changes")
    assert [(h["action"], h["reason"]) for h in history.json()["items"]] == [("released", None), ("claimed", None)]
