"""The organization's audit trail through the API: who may read it, filters and paging."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.samples import Api, assert_problem


def test_the_trail_is_for_roles_with_audit_read(client: TestClient, tenant: Tenant) -> None:
    for key, status in {"rep": 403, "manager": 403, "sales_vp": 200, "cfo": 200, "it_director": 200}.items():
        response = Api(client, tenant[key]).request("GET", "/audit")
        assert response.status_code == status, key
    assert_problem(Api(client, tenant["rep"]).request("GET", "/audit"), 403)


def test_the_trail_filters_by_action_subject_and_actor(client: TestClient, tenant: Tenant) -> None:
    rep, admin = Api(client, tenant["rep"]), Api(client, tenant["admin"])
    first = rep.create("accounts", {"name": "甲"})
    second = rep.create("accounts", {"name": "乙"})
    rep.patch("accounts", first["id"], {"city": "扬州"})
    admin.create("leads", {"name": "丙"})

    def actions(**params: object) -> list[tuple[str, int | None]]:
        items = admin.request("GET", "/audit", params=params).json()["items"]
        return [(item["action"], item["subject_id"]) for item in items]

    assert actions(subject_type="account") == [
        ("account.updated", first["id"]),
        ("account.created", second["id"]),
        ("account.created", first["id"]),
    ]
    assert actions(subject_type="account", subject_id=first["id"]) == [
        ("account.updated", first["id"]),
        ("account.created", first["id"]),
    ]
    assert actions(action="account.created") == [("account.created", second["id"]), ("account.created", first["id"])]
    assert [action for action, _ in actions(actor_user_id=tenant["admin"].user_id)] == ["lead.created"]


def test_the_trail_pages_backwards_by_seq(client: TestClient, tenant: Tenant) -> None:
    admin = Api(client, tenant["admin"])
    everything = admin.request("GET", "/audit", params={"limit": 500}).json()

    seen: list[int] = []
    params: dict[str, object] = {"limit": 7}
    while True:
        page = admin.request("GET", "/audit", params=params).json()
        seen.extend(item["seq"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params["before_seq"] = page["next_cursor"]

    assert everything["next_cursor"] is None
    assert seen == [item["seq"] for item in everything["items"]]
    assert seen == list(range(len(seen), 0, -1))
