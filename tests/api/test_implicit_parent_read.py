"""Implicit parent read: a rep who owns a deal (or a contact, or a ticket) on an account another rep
owns reads that account — by id, in lists, search and exports, with the usual field masks — and
cannot change it: a write answers 403 ``read_only`` and changes nothing. Other reps, other
organizations and partner users see exactly what they saw before."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag


def _audit_count(db: Database, organization_id: int) -> int:
    with db.reading(None, system=True) as session:
        statement = select(func.count()).select_from(AuditEntry).where(tenant_clause(organization_id, AuditEntry))
        return session.scalar(statement) or 0


def _rep2_account_with_a_deal_of_rep(client: TestClient, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    """An account of rep2 (with a credit line) and an open deal on it owned by rep."""
    vp = Api(client, tenant["sales_vp"])
    account = vp.create(
        "accounts",
        {
            "name": f"瑞金医院 {tag()}",
            "industry": "医药",
            "credit_line": "500000.00",
            "owner_id": tenant["rep2"].user_id,
        },
    )
    deal = vp.create(
        "opportunities",
        {
            "name": f"影像设备 {tag()}",
            "account_id": account["id"],
            "amount": "120000.00",
            "owner_id": tenant["rep"].user_id,
        },
    )
    return account, deal


def _hits(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for group in body["groups"] if group["type"] == kind for item in group["items"]]


def _found(body: dict[str, Any], kind: str) -> list[int]:
    return [item["id"] for item in _hits(body, kind)]


def _exported_names(client: TestClient, tenant: Tenant, member: str, q: str) -> list[str]:
    response = client.get("/api/v1/exports/accounts", params={"q": q}, headers=tenant[member].headers)
    assert response.status_code == 200, response.text
    return [row["name"] for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))]


def test_a_rep_reads_the_account_of_its_own_deal_everywhere(client: TestClient, tenant: Tenant) -> None:
    account, deal = _rep2_account_with_a_deal_of_rep(client, tenant)
    rep = Api(client, tenant["rep"])
    suffix = account["name"].split()[-1]

    read = rep.read("accounts", account["id"])
    listed = rep.list_ids("accounts", q=suffix)
    searched = rep.request("GET", "/search", params={"q": account["name"]}).json()
    deals = rep.request("GET", "/search", params={"q": deal["name"]}).json()
    exported = _exported_names(client, tenant, "rep", suffix)

    assert read["name"] == account["name"]
    assert read["owner_id"] == tenant["rep2"].user_id
    assert "credit_line" not in read  # the masks still apply: the credit line is for the CFO and the VP
    assert listed == [account["id"]]
    assert _found(searched, "account") == [account["id"]]
    # the deal's customer is named, not "—"
    assert [hit.get("account_name") for hit in _hits(deals, "opportunity")] == [account["name"]]
    assert exported == [account["name"]]
    assert rep.read("opportunities", deal["id"])["account_id"] == account["id"]


def test_a_write_to_a_read_only_account_is_refused_and_changes_nothing(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account, _ = _rep2_account_with_a_deal_of_rep(client, tenant)
    rep = Api(client, tenant["rep"])
    before = Api(client, tenant["sales_vp"]).read("accounts", account["id"])
    audited = _audit_count(db, tenant.organization_id)

    patched = rep.patch("accounts", account["id"], {"industry": "教育"}, version=before["version"])
    patched_owner = rep.patch("accounts", account["id"], {"owner_id": tenant["rep"].user_id})
    deleted = rep.request("DELETE", f"/accounts/{account['id']}")

    for response in (patched, patched_owner, deleted):
        problem = assert_problem(response, 403)
        assert problem["code"] == "read_only"
        assert str(account["id"]) in problem["detail"]
    assert Api(client, tenant["sales_vp"]).read("accounts", account["id"]) == before
    assert _audit_count(db, tenant.organization_id) == audited


def test_converting_a_lead_into_a_read_only_account_is_refused(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account, _ = _rep2_account_with_a_deal_of_rep(client, tenant)
    rep = Api(client, tenant["rep"])
    lead = rep.create("leads", {"name": "张主任", "company": f"某医院 {tag()}"})
    audited = _audit_count(db, tenant.organization_id)

    response = rep.request(
        "POST", f"/leads/{lead['id']}/convert", json={"account_id": account["id"], "create_opportunity": False}
    )

    assert assert_problem(response, 403)["code"] == "read_only"
    assert rep.read("leads", lead["id"])["status"] == lead["status"]
    assert _audit_count(db, tenant.organization_id) == audited


def test_a_contact_or_a_ticket_of_the_rep_opens_its_account_too(client: TestClient, tenant: Tenant) -> None:
    vp = Api(client, tenant["sales_vp"])
    rep = Api(client, tenant["rep"])
    by_contact = vp.create("accounts", {"name": f"中山医院 {tag()}", "owner_id": tenant["rep2"].user_id})
    by_ticket = vp.create("accounts", {"name": f"华山医院 {tag()}", "owner_id": tenant["rep2"].user_id})
    vp.create("contacts", {"name": "李医生", "account_id": by_contact["id"], "owner_id": tenant["rep"].user_id})
    vp.create("tickets", {"subject": "设备报修", "account_id": by_ticket["id"], "owner_id": tenant["rep"].user_id})

    assert rep.read("accounts", by_contact["id"])["id"] == by_contact["id"]
    assert rep.read("accounts", by_ticket["id"])["id"] == by_ticket["id"]


def test_without_a_live_deal_of_its_own_a_rep_still_gets_404(client: TestClient, tenant: Tenant) -> None:
    vp = Api(client, tenant["sales_vp"])
    rep = Api(client, tenant["rep"])
    untouched = vp.create("accounts", {"name": f"仁济医院 {tag()}", "owner_id": tenant["rep2"].user_id})
    of_rep2 = vp.create("accounts", {"name": f"长海医院 {tag()}", "owner_id": tenant["rep2"].user_id})
    vp.create("opportunities", {"name": "别人的商机", "account_id": of_rep2["id"], "owner_id": tenant["rep2"].user_id})
    once = vp.create("accounts", {"name": f"曙光医院 {tag()}", "owner_id": tenant["rep2"].user_id})
    gone = vp.create("opportunities", {"name": "已删除", "account_id": once["id"], "owner_id": tenant["rep"].user_id})
    assert vp.request("DELETE", f"/opportunities/{gone['id']}").status_code == 204

    for hidden in (untouched, of_rep2, once):
        assert_problem(rep.request("GET", f"/accounts/{hidden['id']}"), 404)
        assert_problem(rep.patch("accounts", hidden["id"], {"industry": "教育"}), 404)
        assert rep.list_ids("accounts", q=hidden["name"].split()[-1]) == []


def test_another_organization_and_a_dealer_see_nothing_more(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, partner: Tenant
) -> None:
    account, deal = _rep2_account_with_a_deal_of_rep(client, tenant)
    dealer = Api(client, partner["partner_user"])
    stranger = Api(client, other_tenant["rep"])
    suffix = account["name"].split()[-1]

    for outsider in (dealer, stranger):
        assert_problem(outsider.request("GET", f"/accounts/{account['id']}"), 404)
        assert_problem(outsider.request("GET", f"/opportunities/{deal['id']}"), 404)
        assert_problem(outsider.patch("accounts", account["id"], {"industry": "教育"}), 404)
        assert outsider.list_ids("accounts", q=suffix) == []
    assert _exported_names(client, other_tenant, "rep", suffix) == []
