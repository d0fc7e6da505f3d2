"""``Idempotency-Key`` on POST: a retried create never creates twice."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.concurrency import at_once
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account, new_lead, tag


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["rep"])


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(api: Api) -> None:
    key = {"Idempotency-Key": f"create-account-{tag()}"}
    body = {"name": "北京协和医院", "employees": 5000}

    first = api.request("POST", "/accounts", json=body, headers=key)
    second = api.request("POST", "/accounts", json=body, headers=key)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"] == f"/api/v1/accounts/{first.json()['id']}"
    assert second.headers["etag"] == first.headers["etag"] == '"1"'
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert api.list_ids("accounts") == [first.json()["id"]]


def test_the_same_key_with_another_body_is_refused(api: Api) -> None:
    key = {"Idempotency-Key": f"k-{tag()}"}
    created = api.request("POST", "/accounts", json={"name": "华山医院"}, headers=key)

    other_body = api.request("POST", "/accounts", json={"name": "瑞金医院"}, headers=key)
    other_route = api.request("POST", "/leads", json={"name": "华山医院"}, headers=key)

    problem = assert_problem(other_body, 422, field="Idempotency-Key", code="idempotency_key_reused")
    assert "POST /api/v1/accounts" in problem["errors"][0]["message"]
    assert_problem(other_route, 422, field="Idempotency-Key", code="idempotency_key_reused")
    assert api.list_ids("accounts") == [created.json()["id"]]
    assert api.list_ids("leads") == []


def test_keys_belong_to_whoever_sent_them(client: TestClient, tenant: Tenant) -> None:
    key = {"Idempotency-Key": "shared-key"}
    rep, rep2 = Api(client, tenant["rep"]), Api(client, tenant["rep2"])

    mine = rep.request("POST", "/accounts", json={"name": "同名医院"}, headers=key)
    theirs = rep2.request("POST", "/accounts", json={"name": "同名医院"}, headers=key)

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
def test_a_key_must_be_1_to_200_characters(api: Api, key: str) -> None:
    response = api.request("POST", "/accounts", json={"name": "空键医院"}, headers={"Idempotency-Key": key})

    assert_problem(response, 422, field="Idempotency-Key")
    assert api.list_ids("accounts") == []


def test_a_failed_create_does_not_burn_the_key(api: Api) -> None:
    key = {"Idempotency-Key": f"k-{tag()}"}

    refused = api.request("POST", "/accounts", json={"name": "坏医院", "tier": "Z"}, headers=key)
    accepted = api.request("POST", "/accounts", json={"name": "好医院"}, headers=key)

    assert_problem(refused, 422, field="tier")
    assert accepted.status_code == 201
    assert "idempotent-replayed" not in accepted.headers


def test_a_retried_lead_conversion_converts_once(api: Api) -> None:
    lead = new_lead(api)
    key = {"Idempotency-Key": f"convert-{tag()}"}

    first = api.request("POST", f"/leads/{lead['id']}/convert", json={}, headers=key)
    second = api.request("POST", f"/leads/{lead['id']}/convert", json={}, headers=key)
    without_key = api.request("POST", f"/leads/{lead['id']}/convert", json={})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert_problem(without_key, 409)
    assert without_key.json()["code"] == "already_converted"
    assert api.list_ids("accounts") == [first.json()["account"]["id"]]
    assert api.list_ids("opportunities") == [first.json()["opportunity"]["id"]]


@pytest.mark.committing
def test_concurrent_posts_with_one_key_create_one_record(client: TestClient, tenant: Tenant) -> None:
    rep = tenant["rep"]
    account = new_account(Api(client, rep))

    for round_number in range(3):
        key = {"Idempotency-Key": f"race-{round_number}-{tag()}", **rep.headers}
        body = {"subject": f"同时提交 {round_number}", "account_id": account["id"], "priority": "high"}

        def post(
            test_client: TestClient, body: dict[str, object] = body, key: dict[str, str] = key
        ) -> tuple[int, bool]:
            response = test_client.post("/api/v1/tickets", json=body, headers=key)
            assert response.status_code == 201, response.text
            return response.json()["id"], response.headers.get("idempotent-replayed") == "true"

        outcomes = at_once(client.app, [post] * 4)

        assert {record_id for record_id, _ in outcomes} == {outcomes[0][0]}
        assert sorted(replayed for _, replayed in outcomes) == [False, True, True, True]
    tickets = Api(client, rep).list_ids("tickets")
    assert len(tickets) == 3
