"""Every CRM record type through the generic API: create, read, list, patch, delete, restore, history."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from tests.factories import Tenant
from tests.samples import SPECS, Api, RecordSpec, assert_problem

pytestmark = pytest.mark.parametrize("spec", SPECS, ids=[spec.plural for spec in SPECS])


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["admin"], reuse=True)


def audit_count(db: Database, organization_id: int) -> int:
    with db.reading(None, system=True) as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(tenant_clause(organization_id, AuditEntry))
            )
            or 0
        )


def test_create_answers_201_with_location_and_etag(spec: RecordSpec, api: Api) -> None:
    response = api.request("POST", f"/{spec.plural}", json=spec.body(api))

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/{spec.plural}/{body['id']}"
    assert body["version"] == 1
    assert response.headers["etag"] == '"1"'
    read = api.read(spec.plural, body["id"])
    assert read == body


def test_list_filters_sorts_and_pages_without_gaps_or_duplicates(spec: RecordSpec, api: Api) -> None:
    created = [api.create(spec.plural, spec.body(api, index)) for index in range(5)]
    keys = [record[spec.key_field] for record in created]
    ids = [record["id"] for record in created]

    assert api.list_ids(spec.plural, **{spec.key_field: str(keys[3])}) == [ids[3]]
    assert sorted(api.list_ids(spec.plural, **{f"{spec.key_field}__in": f"{keys[0]},{keys[4]}"})) == sorted(
        [ids[0], ids[4]]
    )
    # the default order, two records a page: every record once, in the same order as one big page
    everything = api.list_ids(spec.plural)
    assert sorted(everything) == sorted(ids)
    assert api.list_ids(spec.plural, limit=2) == everything
    if spec.range_field is None:
        return
    values = [record[spec.range_field] for record in created]
    at_least_third = api.list_ids(spec.plural, **{f"{spec.range_field}__gte": str(values[2])})
    assert at_least_third == [record_id for record_id in everything if record_id in ids[2:]]
    assert api.list_ids(spec.plural, sort=spec.range_field, limit=2) == ids
    assert api.list_ids(spec.plural, sort=f"-{spec.range_field}", limit=2) == ids[::-1]
    first = api.request("GET", f"/{spec.plural}", params={"sort": spec.range_field, "limit": 2}).json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    second = api.request(
        "GET", f"/{spec.plural}", params={"sort": spec.range_field, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [item["id"] for item in second["items"]] == ids[2:4]


def test_patch_changes_the_record_and_its_version(spec: RecordSpec, api: Api) -> None:
    record = api.create(spec.plural, spec.body(api))

    response = api.patch(spec.plural, record["id"], spec.change, version=1)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    for name, value in spec.change.items():
        assert body[name] == value
    assert api.read(spec.plural, record["id"]) == body


def test_stale_if_match_answers_412_and_changes_nothing(
    spec: RecordSpec, api: Api, db: Database, tenant: Tenant
) -> None:
    record = api.create(spec.plural, spec.body(api))
    assert api.patch(spec.plural, record["id"], spec.change, version=1).status_code == 200
    current = api.read(spec.plural, record["id"])
    entries = audit_count(db, tenant.organization_id)

    stale = api.patch(spec.plural, record["id"], spec.change, version=1)
    stale_delete = api.request("DELETE", f"/{spec.plural}/{record['id']}", headers={"If-Match": '"1"'})

    assert_problem(stale, 412)
    assert stale.json()["code"] == "stale_version"
    assert_problem(stale_delete, 412)
    assert api.read(spec.plural, record["id"]) == current
    assert audit_count(db, tenant.organization_id) == entries


@pytest.mark.parametrize("breakage", ["unknown_field", "wrong_type", "bad_choice"])
def test_bad_body_answers_422_naming_the_field(spec: RecordSpec, api: Api, breakage: str) -> None:
    body = spec.body(api)
    field: str
    value: Any
    if breakage == "unknown_field":
        field, value = "colour", "red"
    elif breakage == "wrong_type":
        field, value = spec.wrong_type
    else:
        if spec.bad_choice is None:
            pytest.skip(f"{spec.plural} have no picklist field")
        field, value = spec.bad_choice
    before = api.list_ids(spec.plural)

    created = api.request("POST", f"/{spec.plural}", json={**body, field: value})
    record = api.create(spec.plural, spec.body(api, 1))
    patched = api.patch(spec.plural, record["id"], {field: value})

    assert_problem(created, 422, field=field)
    assert_problem(patched, 422, field=field)
    assert sorted(api.list_ids(spec.plural)) == sorted([record["id"], *before])
    assert api.read(spec.plural, record["id"])["version"] == 1


def test_delete_hides_the_record_until_restored(spec: RecordSpec, api: Api) -> None:
    record = api.create(spec.plural, spec.body(api))

    deleted = api.request("DELETE", f"/{spec.plural}/{record['id']}", headers={"If-Match": '"1"'})

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(api.request("GET", f"/{spec.plural}/{record['id']}"), 404)
    assert record["id"] not in api.list_ids(spec.plural)
    assert_problem(api.request("DELETE", f"/{spec.plural}/{record['id']}"), 404)

    restored = api.request("POST", f"/{spec.plural}/{record['id']}/restore")

    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == record["id"]
    assert api.read(spec.plural, record["id"])["id"] == record["id"]
    assert record["id"] in api.list_ids(spec.plural)
    assert_problem(api.request("POST", f"/{spec.plural}/{record['id']}/restore"), 404)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/history"), ("POST", "/restore")],
)
def test_unknown_id_answers_404(spec: RecordSpec, api: Api, method: str, suffix: str) -> None:
    body = spec.change if method == "PATCH" else None

    response = api.request(method, f"/{spec.plural}/987654321{suffix}", json=body)

    problem = assert_problem(response, 404)
    assert problem["code"] == "not_found"


def test_history_shows_each_change_with_its_values(spec: RecordSpec, api: Api, tenant: Tenant) -> None:
    record = api.create(spec.plural, spec.body(api))
    api.patch(spec.plural, record["id"], spec.change)
    api.request("DELETE", f"/{spec.plural}/{record['id']}")
    api.request("POST", f"/{spec.plural}/{record['id']}/restore", headers={"X-Request-ID": "restore-1"})

    response = api.request("GET", f"/{spec.plural}/{record['id']}/history")

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    actions = [item["action"] for item in items]
    assert actions[0] == f"{spec.noun}.restored"
    assert actions[1] == f"{spec.noun}.deleted"
    assert actions[-1] == f"{spec.noun}.created"
    assert f"{spec.noun}.updated" in actions or f"{spec.noun}.stage_changed" in actions
    admin = tenant["admin"]
    assert {item["actor_user_id"] for item in items} == {admin.user_id}
    assert {item["actor_kind"] for item in items} == {"token"}
    assert items[0]["request_id"] == "restore-1"
    assert items[0]["changes"]["deleted_at"][1] is None
    assert items[1]["changes"]["deleted_at"][0] is None
    updated = next(item for item in items if item["action"].endswith(".updated"))
    for name, value in spec.change.items():
        assert updated["changes"][name][1] == value
    created = items[-1]["changes"]
    assert created[spec.key_field][0] is None
    assert created[spec.key_field][1] == record[spec.key_field]
    assert [item["seq"] for item in items] == sorted((item["seq"] for item in items), reverse=True)
