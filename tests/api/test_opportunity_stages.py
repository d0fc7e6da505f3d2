"""Moving an opportunity through its stages: history with time spent, closing and reopening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account, new_product_line

OPENED = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["rep"])


@pytest.fixture
def opportunity(api: Api) -> dict[str, Any]:
    account = new_account(api)
    with frozen_at(OPENED):
        return api.create("opportunities", {"name": "MRI 采购", "account_id": account["id"], "amount": "3200000"})


def move(api: Api, opportunity: dict[str, Any], stage: str, **fields: Any) -> Any:
    return api.request("POST", f"/opportunities/{opportunity['id']}/stage", json={"stage": stage, **fields})


def test_a_move_records_who_when_and_how_long_the_deal_sat(
    api: Api, tenant: Tenant, opportunity: dict[str, Any]
) -> None:
    with frozen_at(OPENED + timedelta(days=3, hours=2)) as advance:
        qualified = move(api, opportunity, "qualification")
        advance(timedelta(days=5))
        proposal = move(api, opportunity, "proposal")

    assert qualified.status_code == proposal.status_code == 200
    body = proposal.json()
    assert (body["stage"], body["stage_changed_at"], body["closed_at"], body["version"]) == (
        "proposal",
        "2026-04-09T10:00:00+00:00",
        None,
        3,
    )
    history = api.request("GET", f"/opportunities/{opportunity['id']}/stage-history").json()["items"]
    assert [(h["from_stage"], h["to_stage"], h["duration_seconds"], h["changed_at"]) for h in history] == [
        (None, "prospecting", None, "2026-04-01T08:00:00+00:00"),
        ("prospecting", "qualification", 3 * 86400 + 7200, "2026-04-04T10:00:00+00:00"),
        ("qualification", "proposal", 5 * 86400, "2026-04-09T10:00:00+00:00"),
    ]
    assert {h["changed_by_id"] for h in history} == {tenant["rep"].user_id}
    audit = api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"]
    assert audit[0]["action"] == "opportunity.stage_changed"
    assert audit[0]["changes"]["stage"] == ["qualification", "proposal"]


def test_lost_needs_a_reason_and_changes_nothing_without_one(api: Api, opportunity: dict[str, Any]) -> None:
    refused = move(api, opportunity, "lost")

    assert_problem(refused, 422, field="lost_reason", code="required")
    assert api.read("opportunities", opportunity["id"]) == opportunity
    history = api.request("GET", f"/opportunities/{opportunity['id']}/stage-history").json()["items"]
    assert len(history) == 1


def test_closing_stamps_closed_at_and_reopening_clears_it(api: Api, opportunity: dict[str, Any]) -> None:
    with frozen_at(OPENED + timedelta(days=10)) as advance:
        lost = move(api, opportunity, "lost", lost_reason="价格高于竞品 15%").json()
        advance(timedelta(days=1))
        reopened = move(api, opportunity, "negotiation").json()
        advance(timedelta(days=1))
        won = move(api, opportunity, "won").json()

    assert (lost["closed_at"], lost["lost_reason"]) == ("2026-04-11T08:00:00+00:00", "价格高于竞品 15%")
    assert (reopened["closed_at"], reopened["lost_reason"]) == (None, None)
    assert (won["stage"], won["closed_at"], won["lost_reason"]) == ("won", "2026-04-13T08:00:00+00:00", None)


def test_moving_to_the_current_stage_changes_nothing(api: Api, opportunity: dict[str, Any]) -> None:
    response = move(api, opportunity, "prospecting")

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert len(api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"]) == 1


def test_a_stale_move_is_a_412(api: Api, opportunity: dict[str, Any]) -> None:
    move(api, opportunity, "qualification")

    stale = api.request(
        "POST", f"/opportunities/{opportunity['id']}/stage", json={"stage": "won"}, headers={"If-Match": '"1"'}
    )

    assert_problem(stale, 412)
    assert api.read("opportunities", opportunity["id"])["stage"] == "qualification"


def test_a_patch_of_the_stage_takes_the_same_path(api: Api, opportunity: dict[str, Any]) -> None:
    with frozen_at(OPENED + timedelta(hours=6)):
        response = api.patch("opportunities", opportunity["id"], {"stage": "won", "amount": "3000000"}, version=1)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stage"], body["amount"], body["closed_at"], body["version"]) == (
        "won",
        "3000000.00",
        "2026-04-01T14:00:00+00:00",
        2,
    )
    history = api.request("GET", f"/opportunities/{opportunity['id']}/stage-history").json()["items"]
    assert [(h["to_stage"], h["duration_seconds"]) for h in history] == [("prospecting", None), ("won", 21600)]


def test_a_lost_reason_belongs_to_a_lost_deal(api: Api, opportunity: dict[str, Any]) -> None:
    assert_problem(api.patch("opportunities", opportunity["id"], {"lost_reason": "太贵"}), 422, field="lost_reason")


def test_product_lines_change_with_one_version_and_one_audit_entry(
    api: Api, client: TestClient, tenant: Tenant, opportunity: dict[str, Any]
) -> None:
    admin = Api(client, tenant["admin"])
    first, second = new_product_line(admin), new_product_line(admin)

    lines = api.patch("opportunities", opportunity["id"], {"product_line_ids": [second["id"], first["id"]]}, version=1)
    both = api.patch(
        "opportunities", opportunity["id"], {"product_line_ids": [first["id"]], "amount": "1.00"}, version=2
    )
    same = api.patch("opportunities", opportunity["id"], {"product_line_ids": [first["id"]]}, version=3)
    unknown = api.patch("opportunities", opportunity["id"], {"product_line_ids": [987654]})

    assert lines.json()["product_line_ids"] == sorted([first["id"], second["id"]])
    assert (lines.json()["version"], both.json()["version"], same.json()["version"]) == (2, 3, 3)
    assert both.json()["product_line_ids"] == [first["id"]]
    assert_problem(unknown, 422, field="product_line_ids", code="not_found")
    entries = api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"]
    assert [(entry["action"], sorted(entry["changes"])) for entry in entries[:3]] == [
        ("opportunity.updated", ["product_line_ids"]),
        ("opportunity.updated", ["amount"]),
        ("opportunity.updated", ["product_line_ids"]),
    ]


def test_a_stale_move_to_the_current_stage_is_a_412_too(api: Api, opportunity: dict[str, Any]) -> None:
    api.patch("opportunities", opportunity["id"], {"name": "改过的名字"})

    stale = api.request(
        "POST", f"/opportunities/{opportunity['id']}/stage", json={"stage": "prospecting"}, headers={"If-Match": '"1"'}
    )

    assert_problem(stale, 412)
