"""Users, regions and personal API tokens through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

PASSWORD = "correct horse battery"


@pytest.fixture
def admin(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["admin"])


@pytest.fixture
def with_password(db: Database, tenant: Tenant) -> str:
    """The rep's username, now with a password (stored directly: a password *change* through the
    service would end the rep's factory token, which the tests below keep using)."""
    actor = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(actor) as session:
        user = session.get(User, tenant["rep"].user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    return tenant["rep"].username


def test_a_password_buys_a_token_that_works(client: TestClient, tenant: Tenant, with_password: str) -> None:
    issued = client.post("/api/v1/auth/token", json={"username": with_password, "password": PASSWORD, "name": "脚本"})

    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["token"].startswith(f"clk_{body['prefix']}_")
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['token']}"}).json()
    assert (me["user_id"], me["token_id"], me["scope"]) == (tenant["rep"].user_id, body["token_id"], "own")


@pytest.mark.parametrize(("password", "status"), [("wrong password", 401), ("", 422)])
def test_a_wrong_password_buys_nothing(client: TestClient, with_password: str, password: str, status: int) -> None:
    response = client.post("/api/v1/auth/token", json={"username": with_password, "password": password})

    assert_problem(response, status)


def test_a_deactivated_user_can_neither_sign_in_nor_use_a_token(
    client: TestClient, admin: Api, tenant: Tenant, with_password: str
) -> None:
    deactivated = admin.patch("users", tenant["rep"].user_id, {"is_active": False})

    assert deactivated.status_code == 200
    assert_problem(client.post("/api/v1/auth/token", json={"username": with_password, "password": PASSWORD}), 401)
    assert_problem(client.get("/api/v1/users/me", headers=tenant["rep"].headers), 401)


def test_a_revoked_token_stops_working_at_once(client: TestClient, tenant: Tenant, with_password: str) -> None:
    issued = client.post("/api/v1/auth/token", json={"username": with_password, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200

    revoked = client.delete(f"/api/v1/auth/tokens/{issued['token_id']}", headers=headers)

    assert revoked.status_code == 204
    assert_problem(client.get("/api/v1/users/me", headers=headers), 401)
    assert client.get("/api/v1/users/me", headers=tenant["rep"].headers).status_code == 200


def test_each_user_lists_their_own_tokens_and_a_manager_of_users_all(
    client: TestClient, admin: Api, tenant: Tenant
) -> None:
    rep_tokens = Api(client, tenant["rep"]).request("GET", "/auth/tokens").json()["items"]
    all_tokens = admin.request("GET", "/auth/tokens").json()["items"]

    assert {token["user_id"] for token in rep_tokens} == {tenant["rep"].user_id}
    assert {token["user_id"] for token in all_tokens} == {member.user_id for member in tenant.members.values()}
    assert "secret_hash" not in all_tokens[0]


def test_a_user_is_added_and_named_once(admin: Api, client: TestClient, tenant: Tenant) -> None:
    username = f"li.lei-{tag()}"
    body = {"username": username, "display_name": "李雷", "role": "rep", "manager_id": tenant["manager"].user_id}

    created = admin.request("POST", "/users", json=body)
    again = admin.request("POST", "/users", json=body)
    by_rep = Api(client, tenant["rep"]).request("POST", "/users", json={**body, "username": f"x-{tag()}"})

    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == f"/api/v1/users/{user['id']}"
    assert (user["username"], user["role"], user["manager_id"], user["is_active"]) == (
        username,
        "rep",
        tenant["manager"].user_id,
        True,
    )
    assert "password_hash" not in user
    assert_problem(again, 409, field="username")
    assert_problem(by_rep, 403)


def test_anyone_edits_their_own_name_but_not_their_role(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    user_id = tenant["rep"].user_id

    renamed = rep.patch("users", user_id, {"display_name": "小王", "locale": "en"}, version=1)
    promoted = rep.patch("users", user_id, {"role": "admin"})
    stale = rep.patch("users", user_id, {"display_name": "老王"}, version=1)

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["display_name"], renamed.json()["locale"], renamed.json()["version"]) == ("小王", "en", 2)
    assert renamed.headers["etag"] == '"2"'
    assert_problem(promoted, 403)
    assert_problem(stale, 412)
    assert rep.request("GET", "/users/me").json()["role"] == "rep"


def test_a_role_change_ends_the_old_credentials_and_the_new_ones_carry_the_role(
    admin: Api, client: TestClient, tenant: Tenant, with_password: str
) -> None:
    rep = Api(client, tenant["rep"])
    assert_problem(rep.request("GET", "/audit"), 403)

    assert admin.patch("users", tenant["rep"].user_id, {"role": "it_director"}).status_code == 200

    assert_problem(rep.request("GET", "/audit"), 401)
    issued = client.post("/api/v1/auth/token", json={"username": with_password, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/audit", headers=headers).status_code == 200
    assert client.get("/api/v1/users/me", headers=headers).json()["scope"] == "all"


def test_reporting_lines_cannot_loop_and_nobody_deactivates_themselves(admin: Api, tenant: Tenant) -> None:
    cycle = admin.patch("users", tenant["director"].user_id, {"manager_id": tenant["rep"].user_id})
    self_off = admin.patch("users", tenant["admin"].user_id, {"is_active": False})
    foreign_region = admin.patch("users", tenant["rep"].user_id, {"region_id": 987654})

    assert_problem(cycle, 422, field="manager_id", code="cycle")
    assert_problem(self_off, 422, field="is_active")
    assert_problem(foreign_region, 422, field="region_id", code="not_found")


def test_users_list_filters_and_pages(admin: Api, tenant: Tenant) -> None:
    reps = admin.request("GET", "/users", params={"role": "rep"}).json()["items"]
    team = admin.request("GET", "/users", params={"manager_id": tenant["manager"].user_id}).json()["items"]
    first = admin.request("GET", "/users", params={"limit": 5}).json()
    rest = admin.request("GET", "/users", params={"limit": 5, "after_id": first["next_cursor"]}).json()

    assert {user["id"] for user in reps} == {tenant["rep"].user_id, tenant["rep2"].user_id}
    assert {user["id"] for user in team} == {tenant["rep"].user_id, tenant["rep2"].user_id}
    ids = [user["id"] for user in first["items"] + rest["items"]]
    assert ids == sorted(member.user_id for member in tenant.members.values())
    assert rest["next_cursor"] is None


def test_regions_are_listed_and_added_once(admin: Api, tenant: Tenant) -> None:
    added = admin.request("POST", "/regions", json={"name": "华南", "code": "S"})
    again = admin.request("POST", "/regions", json={"name": "华南"})

    assert added.status_code == again.status_code == 201
    assert added.json()["id"] == again.json()["id"]
    regions = admin.request("GET", "/regions").json()["items"]
    assert {region["id"] for region in regions} == {tenant.region_id, added.json()["id"]}
    assert added.json() == {"id": added.json()["id"], "name": "华南", "code": "S"}
