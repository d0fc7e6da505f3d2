"""Lead conversion: one call makes the account, contact and opportunity, or nothing at all."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account, new_product_line


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["rep"])


@pytest.fixture
def lead(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    admin = Api(client, tenant["admin"])
    line = new_product_line(admin)
    return admin.create(
        "leads",
        {
            "name": "王芳",
            "company": "仁济医院",
            "title": "设备科主任",
            "email": "wang.fang@example.com",
            "mobile": "138 0013 8000",
            "industry": "hospital",
            "region_id": tenant.region_id,
            "product_line_id": line["id"],
            "owner_id": tenant["rep"].user_id,
        },
    )


def audit_count(db: Database, tenant: Tenant) -> int:
    with db.reading(None, system=True) as session:
        statement = (
            select(func.count()).select_from(AuditEntry).where(tenant_clause(tenant.organization_id, AuditEntry))
        )
        return session.scalar(statement) or 0


def test_conversion_makes_the_three_records_from_the_lead(api: Api, tenant: Tenant, lead: dict[str, Any]) -> None:
    response = api.request("POST", f"/leads/{lead['id']}/convert", json={}, headers={"X-Request-ID": "convert-1"})

    assert response.status_code == 201, response.text
    result = response.json()
    account, contact, opportunity, converted = (
        result["account"],
        result["contact"],
        result["opportunity"],
        result["lead"],
    )
    rep = tenant["rep"].user_id
    assert response.headers["location"] == f"/api/v1/accounts/{account['id']}"
    assert (account["name"], account["industry"], account["region_id"], account["owner_id"]) == (
        "仁济医院",
        "hospital",
        tenant.region_id,
        rep,
    )
    assert (contact["name"], contact["title"], contact["email"], contact["account_id"], contact["owner_id"]) == (
        "王芳",
        "设备科主任",
        "wang.fang@example.com",
        account["id"],
        rep,
    )
    assert (opportunity["name"], opportunity["account_id"], opportunity["contact_id"], opportunity["stage"]) == (
        "仁济医院 - 王芳",
        account["id"],
        contact["id"],
        "prospecting",
    )
    assert (opportunity["source_lead_id"], opportunity["product_line_ids"]) == (lead["id"], [lead["product_line_id"]])
    assert (converted["status"], converted["converted_account_id"], converted["converted_contact_id"]) == (
        "converted",
        account["id"],
        contact["id"],
    )
    assert converted["converted_opportunity_id"] == opportunity["id"]
    trail = Api(api.client, tenant["admin"]).request("GET", "/audit", params={"limit": 5}).json()["items"]
    assert [(entry["action"], entry["request_id"]) for entry in trail[:4]] == [
        ("lead.converted", "convert-1"),
        ("opportunity.created", "convert-1"),
        ("contact.created", "convert-1"),
        ("account.created", "convert-1"),
    ]


def test_conversion_into_an_existing_account_without_extras(api: Api, lead: dict[str, Any]) -> None:
    account = new_account(api)

    response = api.request(
        "POST",
        f"/leads/{lead['id']}/convert",
        json={"account_id": account["id"], "create_contact": False, "create_opportunity": False},
    )

    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["account"]["id"], result["contact"], result["opportunity"]) == (account["id"], None, None)
    assert api.list_ids("accounts") == [account["id"]]
    assert api.list_ids("contacts") == []


def test_a_bad_part_converts_nothing(api: Api, db: Database, tenant: Tenant, lead: dict[str, Any]) -> None:
    entries = audit_count(db, tenant)

    response = api.request(
        "POST",
        f"/leads/{lead['id']}/convert",
        json={"account": {"name": "新客户"}, "opportunity": {"name": "新商机", "product_line_ids": [987654]}},
    )

    assert_problem(response, 422, field="product_line_ids", code="not_found")
    assert api.read("leads", lead["id"]) == lead
    assert api.list_ids("accounts") == []
    assert api.list_ids("contacts") == []
    assert api.list_ids("opportunities") == []
    assert audit_count(db, tenant) == entries


def test_an_account_the_caller_cannot_see_is_a_422_naming_it(
    api: Api, client: TestClient, tenant: Tenant, lead: dict[str, Any]
) -> None:
    hidden = new_account(Api(client, tenant["rep2"]))

    response = api.request("POST", f"/leads/{lead['id']}/convert", json={"account_id": hidden["id"]})

    assert_problem(response, 422, field="account_id", code="not_found")
    assert api.read("leads", lead["id"])["status"] == "working"


def test_an_existing_and_a_new_account_at_once_is_a_422(api: Api, lead: dict[str, Any]) -> None:
    response = api.request("POST", f"/leads/{lead['id']}/convert", json={"account_id": 1, "account": {"name": "两个"}})

    assert_problem(response, 422, field="body")


def test_a_lead_converts_once_and_never_when_disqualified(api: Api, lead: dict[str, Any]) -> None:
    other = api.create("leads", {"name": "李雷"})
    disqualified = api.patch("leads", other["id"], {"status": "disqualified", "disqualified_reason": "无预算"})
    assert disqualified.status_code == 200

    first = api.request("POST", f"/leads/{lead['id']}/convert", json={})
    again = api.request("POST", f"/leads/{lead['id']}/convert", json={})
    refused = api.request("POST", f"/leads/{other['id']}/convert", json={})

    assert first.status_code == 201
    assert assert_problem(again, 409)["code"] == "already_converted"
    assert assert_problem(refused, 409)["code"] == "disqualified"
    assert_problem(api.patch("leads", lead["id"], {"status": "new"}), 409, field="status")


def test_only_the_convert_call_converts(api: Api, lead: dict[str, Any]) -> None:
    response = api.patch("leads", lead["id"], {"status": "converted"})

    assert_problem(response, 422, field="status", code="use_convert")


def test_another_rep_s_lead_is_not_found(client: TestClient, tenant: Tenant, lead: dict[str, Any]) -> None:
    response = Api(client, tenant["rep2"]).request("POST", f"/leads/{lead['id']}/convert", json={})

    assert assert_problem(response, 404)["code"] == "not_found"
