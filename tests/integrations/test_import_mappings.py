"""Saved import mappings are guarded by the change circuit breaker (GOV-5): saving, changing or
deleting one is a change request with its impact, applied after two sign-offs, rolled back by a new
request; an import names the saved mapping it uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from closeloop.api.routers import imports as imports_router
from closeloop.config import settings
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

CSV = "单位,人数\n北京协和医院,5000\n上海瑞金医院,3000\n".encode()


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    monkeypatch.setattr(settings, "var_dir", tmp_path)
    handed: list[int] = []
    monkeypatch.setattr(imports_router, "enqueue_import", handed.append)
    return handed


def signed_off(client: TestClient, tenant: Tenant, response_json: dict[str, object]) -> dict[str, object]:
    request_id = response_json["id"]
    first = Api(client, tenant["sales_vp"]).request("POST", f"/change-requests/{request_id}/approve")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending"
    second = Api(client, tenant["it_director"]).request("POST", f"/change-requests/{request_id}/approve")
    assert second.status_code == 200, second.text
    body: dict[str, object] = second.json()
    return body


def saved(client: TestClient, tenant: Tenant, name: str, columns: dict[str, str]) -> dict[str, object]:
    admin = Api(client, tenant["admin"])
    asked = admin.request("POST", "/import-mappings", json={"name": name, "entity": "accounts", "columns": columns})
    assert asked.status_code == 202, asked.text
    assert signed_off(client, tenant, asked.json())["status"] == "applied"
    found = [m for m in admin.request("GET", "/import-mappings").json()["items"] if m["name"] == name]
    assert len(found) == 1
    mapping: dict[str, object] = found[0]
    return mapping


def test_a_mapping_is_saved_only_after_both_sign_offs(client: TestClient, tenant: Tenant) -> None:
    admin = Api(client, tenant["admin"])
    name = f"医院名录 {tag()}"

    asked = admin.request(
        "POST",
        "/import-mappings",
        json={"name": name, "entity": "accounts", "columns": {"单位": "name", "人数": "employees"}},
        params={"reason": "每月的医院名录"},
    )

    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert request["kind"] == "import_mapping.create"
    assert request["impact"]["columns_added"] == ["人数", "单位"]
    assert name not in [m["name"] for m in admin.request("GET", "/import-mappings").json()["items"]]
    assert signed_off(client, tenant, request)["status"] == "applied"
    listed = admin.request("GET", "/import-mappings", params={"entity": "accounts"}).json()["items"]
    assert [m["columns"] for m in listed if m["name"] == name] == [{"单位": "name", "人数": "employees"}]


def test_a_bad_mapping_is_refused_when_asked(client: TestClient, tenant: Tenant) -> None:
    admin = Api(client, tenant["admin"])

    unknown_field = admin.request(
        "POST", "/import-mappings", json={"name": f"坏 {tag()}", "entity": "accounts", "columns": {"单位": "nmae"}}
    )
    twice = admin.request(
        "POST",
        "/import-mappings",
        json={"name": f"重复 {tag()}", "entity": "accounts", "columns": {"单位": "name", "名称": "name"}},
    )
    unknown_entity = admin.request(
        "POST", "/import-mappings", json={"name": f"怪 {tag()}", "entity": "planets", "columns": {"a": "name"}}
    )
    by_rep = Api(client, tenant["rep"]).request(
        "POST", "/import-mappings", json={"name": f"代表 {tag()}", "entity": "accounts", "columns": {"单位": "name"}}
    )

    assert_problem(unknown_field, 422, field="单位")
    assert_problem(twice, 422)
    assert_problem(unknown_entity, 422, field="entity")
    assert by_rep.status_code == 403
    assert admin.request("GET", "/change-requests").json()["items"] == []


def test_a_change_shows_the_columns_it_repoints_and_the_imports_that_used_it(
    client: TestClient, tenant: Tenant, queued: list[int]
) -> None:
    mapping = saved(client, tenant, f"名录 {tag()}", {"单位": "name", "人数": "employees"})
    uploaded = client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("名录.csv", CSV, "text/csv")},
        data={"entity": "accounts", "mapping_name": mapping["name"]},
    )
    assert uploaded.status_code == 202, uploaded.text
    assert uploaded.json()["mapping"] == {"单位": "name", "人数": "employees"}
    assert uploaded.json()["mapping_id"] == mapping["id"]
    admin = Api(client, tenant["admin"])

    changed = admin.request(
        "PATCH",
        f"/import-mappings/{mapping['id']}",
        json={"columns": {"单位": "name", "人数": "annual_revenue"}},
        headers={"If-Match": f'"{mapping["version"]}"'},
    )

    assert changed.status_code == 202, changed.text
    impact = changed.json()["impact"]
    assert impact["columns_repointed"] == ["人数"]
    assert impact["recent_imports"] == 1
    assert admin.request("GET", f"/import-mappings/{mapping['id']}").json()["columns"]["人数"] == "employees"


def test_an_applied_change_is_rolled_back_by_a_signed_off_request(client: TestClient, tenant: Tenant) -> None:
    mapping = saved(client, tenant, f"展会 {tag()}", {"单位": "name"})
    admin = Api(client, tenant["admin"])
    deleted = admin.request("DELETE", f"/import-mappings/{mapping['id']}")
    assert deleted.status_code == 202, deleted.text
    assert signed_off(client, tenant, deleted.json())["status"] == "applied"
    assert admin.request("GET", f"/import-mappings/{mapping['id']}").status_code == 404

    rollback = admin.request("POST", f"/change-requests/{deleted.json()['id']}/rollback", json={})

    assert rollback.status_code == 202, rollback.text
    assert rollback.json()["kind"] == "import_mapping.create"
    assert signed_off(client, tenant, rollback.json())["status"] == "applied"
    restored = [m for m in admin.request("GET", "/import-mappings").json()["items"] if m["name"] == mapping["name"]]
    assert [m["columns"] for m in restored] == [{"单位": "name"}]
    actions = [
        e["action"] for e in admin.request("GET", "/audit", params={"subject_type": "import_mapping"}).json()["items"]
    ]
    assert sorted(set(actions)) == ["import_mapping.created", "import_mapping.deleted"]


def test_an_import_names_an_unknown_or_mismatched_mapping_clearly(
    client: TestClient, tenant: Tenant, queued: list[int]
) -> None:
    manager = tenant["manager"]

    unknown = client.post(
        "/api/v1/imports",
        headers=manager.headers,
        files={"file": ("a.csv", CSV, "text/csv")},
        data={"entity": "accounts", "mapping_name": "没有这个"},
    )
    both = client.post(
        "/api/v1/imports",
        headers=manager.headers,
        files={"file": ("a.csv", CSV, "text/csv")},
        data={"entity": "accounts", "mapping_name": "没有这个", "mapping": '{"单位": "name"}'},
    )

    assert_problem(unknown, 422, field="mapping_name")
    assert_problem(both, 422, field="mapping_name")
    assert queued == []
