"""Every /api/v1 endpoint refuses a query parameter it does not take, the same way: 422 problem+json
naming it (``errors[].field`` and RFC 9457 ``invalid_params``) with the accepted ones listed — and
the parameters an endpoint documents keep working."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account

Body = dict[str, Any]


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["admin"])


def _unknown(response: Any, name: str) -> Body:
    problem = assert_problem(response, 422, field=name, code="unknown")
    assert problem["code"] == "validation_failed"
    assert {"name": name, "reason": problem["invalid_params"][0]["reason"]} in problem["invalid_params"]
    assert name in problem["detail"]
    return problem


def _documented_gets(client: TestClient) -> list[tuple[str, list[str]]]:
    """Every GET of the OpenAPI description: its path and its documented query parameters."""
    spec = client.get("/api/openapi.json").json()
    found = []
    for path, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        # ids as 1; an export names a record type (its filters are the list's: refused by the list's check)
        found.append((re.sub(r"\{[^}]+\}", "1", path.replace("{entity}", "accounts")), query))
    return found


def test_every_get_refuses_an_unknown_parameter_naming_it_and_listing_the_accepted(
    client: TestClient, tenant: Tenant
) -> None:
    headers = tenant["admin"].headers
    operations = _documented_gets(client)
    assert len(operations) > 100
    for path, documented in operations:
        response = client.get(f"/api{path}", params={"bogus_param": "1"}, headers=headers)
        problem = _unknown(response, "bogus_param")
        accepted = set(problem["accepted_params"])
        if "is not a filter of" in problem["invalid_params"][0]["reason"]:
            # a record list: its parameters, and the filters of the fields this role may read
            # (a masked field's filter is documented for every role but named to none that cannot read it)
            assert {"limit", "cursor", "sort", "q"} <= accepted, path
        else:  # what the description documents is what the refusal lists
            assert set(documented) == accepted, (path, sorted(set(documented) ^ accepted))


@pytest.mark.parametrize(
    "path",
    [
        "/quality/defects?kind=x",
        "/opportunities?bogus=1",
        "/opportunities/1?bogus=1",
        "/notifications?unread_only=1",
        "/users/me?verbose=1",
    ],
)
def test_the_endpoints_the_tester_found_answer_alike(api: Api, path: str) -> None:
    name = path.split("?")[1].split("=")[0]
    problem = _unknown(api.client.get(f"/api/v1{path}", headers=api.headers()), name)
    assert problem["accepted_params"] == sorted(problem["accepted_params"])


def test_several_unknown_parameters_are_named_in_one_answer(api: Api) -> None:
    response = api.client.get("/api/v1/quality/defects?kind=x&colour=red&status=open", headers=api.headers())
    problem = assert_problem(response, 422, field="kind")
    assert [p["name"] for p in problem["invalid_params"]] == ["kind", "colour"]
    assert {e["field"] for e in problem["errors"]} == {"kind", "colour"}
    assert {"status", "rule", "severity", "owner_id", "limit", "cursor"} <= set(problem["accepted_params"])


def test_a_list_filter_typo_is_refused_like_any_unknown_parameter(api: Api) -> None:
    problem = _unknown(api.request("GET", "/accounts", params={"stauts": "open"}), "stauts")
    assert "is not a filter of accounts" in problem["errors"][0]["message"]
    assert {"limit", "cursor", "sort", "q", "name", "industry"} <= set(problem["accepted_params"])
    # the exports' format is no list parameter; an export takes it
    _unknown(api.request("GET", "/accounts", params={"format": "csv"}), "format")


def test_documented_and_global_parameters_keep_working(api: Api) -> None:
    account = new_account(api)
    page = api.request("GET", "/accounts", params={"limit": "1", "sort": "-id", "name__contains": account["name"]})
    assert page.status_code == 200, page.text
    following = api.request("GET", "/accounts", params={"limit": "1", "cursor": page.json()["next_cursor"] or ""})
    assert following.status_code in (200, 422)  # an empty cursor at the end is the list's own check
    assert api.request("GET", "/quality/defects", params={"status": "all", "limit": "5"}).status_code == 200
    assert api.request("GET", f"/accounts/{account['id']}").status_code == 200
    assert api.request("GET", f"/accounts/{account['id']}/history", params={"limit": "5"}).status_code == 200
    assert api.client.get("/api/v1/exports/accounts?format=csv&sort=name", headers=api.headers()).status_code == 200
    assert api.request("GET", "/users/me").status_code == 200


def test_a_write_with_an_unknown_parameter_changes_nothing(api: Api) -> None:
    """A misspelt ``dry_run`` must not turn a preview into a write."""
    response = api.client.post("/api/v1/accounts?dryrun=true", json={"name": "不应创建"}, headers=api.headers())
    _unknown(response, "dryrun")
    assert not api.request("GET", "/accounts", params={"name": "不应创建"}).json()["items"]
