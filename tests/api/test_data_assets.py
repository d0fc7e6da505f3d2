"""The data asset map (GOV-7): derived from what exists, maintained in the product, exported."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from closeloop.crm import customfields
from closeloop.db.session import Database
from closeloop.governance.customfields.types import FieldType
from closeloop.org import service as org_service
from tests.factories import Tenant
from tests.samples import Api, assert_problem


def test_the_map_lists_every_record_type_field_group_and_metric_with_defaults(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        customfields.create_definition(
            session,
            system,
            customfields.DefinitionCreate(
                record_type="lead", name="budget", field_type=FieldType.MONEY, label_zh="预算", label_en="Budget"
            ),
        )

    items = Api(client, tenant["rep"]).request("GET", "/data-assets").json()["items"]

    by_key = {(item["kind"], item["key"]): item for item in items}
    account = by_key[("record_type", "account")]
    assert "rep" in account["produced_by"]
    assert "cfo" in account["consumed_by"]  # reads accounts, writes none
    assert account["needs_owner"] is True
    finance = by_key[("field_group", "opportunity.finance")]
    assert (finance["produced_by"], finance["consumed_by"]) == (["sales_vp"], ["cfo"])  # the CFO reads deals only
    assert ("field_group", "lead.custom") in by_key
    assert ("field_group", "account.custom") not in by_key  # accounts have no custom fields here
    assert by_key[("metric", "funnel")]["produced_by"] == ["system"]


def test_sales_ops_maintain_an_entry_and_it_is_audited(client: TestClient, tenant: Tenant) -> None:
    vp = Api(client, tenant["sales_vp"])
    body = {
        "produced_by": ["rep", "manager"],
        "consumed_by": ["director", "sales_vp"],
        "responsible": ["manager"],
        "accountable_user_id": tenant["director"].user_id,
        "consulted": ["it_director"],
        "informed": ["sales_vp"],
        "notes": "联系人职务每半年确认一次",
    }

    saved = vp.request("PUT", "/data-assets/record_type/contact", json=body)
    rep_try = Api(client, tenant["rep"]).request("PUT", "/data-assets/record_type/contact", json=body)
    unknown = vp.request("PUT", "/data-assets/record_type/spaceship", json=body)
    bad_role = vp.request("PUT", "/data-assets/record_type/contact", json={**body, "informed": ["ceo"]})

    assert saved.status_code == 200, saved.text
    entry = saved.json()
    assert (entry["maintained"], entry["needs_owner"], entry["responsible"]) == (True, False, ["manager"])
    assert entry["accountable"].startswith("Director")
    assert_problem(rep_try, 403)
    assert_problem(unknown, 404)
    assert_problem(bad_role, 422, field="informed.0")
    trail = vp.request("GET", "/audit", params={"action": "data_asset.updated"}).json()["items"]
    assert trail[0]["changes"]["accountable_user_id"] == [None, tenant["director"].user_id]


def test_the_map_exports_as_csv_and_xlsx(client: TestClient, tenant: Tenant) -> None:
    headers = tenant["manager"].headers

    as_csv = client.get("/api/v1/data-assets/export", headers=headers)
    as_xlsx = client.get("/api/v1/data-assets/export", params={"format": "xlsx"}, headers=headers)

    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    contact = next(row for row in rows if row["key"] == "contact")
    assert contact["name_zh"] == "联系人"
    assert "rep" in contact["produced_by"].split("; ")
    sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][:4] == ("kind", "key", "name_zh", "name_en")
    assert len(values) == len(rows) + 1


def test_another_organization_s_entries_stay_its_own(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    Api(client, tenant["sales_vp"]).request(
        "PUT",
        "/data-assets/metric/funnel",
        json={"notes": "由销售运营维护", "accountable_user_id": tenant["sales_vp"].user_id},
    )
    foreign = Api(client, other_tenant["sales_vp"]).request(
        "PUT", "/data-assets/metric/funnel", json={"accountable_user_id": tenant["sales_vp"].user_id}
    )

    other = Api(client, other_tenant["rep"]).request("GET", "/data-assets").json()["items"]

    assert_problem(foreign, 422, field="accountable_user_id")
    assert next(item for item in other if item["key"] == "funnel")["notes"] is None


def test_a_change_keeps_what_it_does_not_send_and_the_accountable_must_see_the_asset(
    client: TestClient, tenant: Tenant
) -> None:
    vp = Api(client, tenant["sales_vp"])
    full = {"produced_by": ["rep"], "consumed_by": ["manager"], "responsible": ["manager"],
            "consulted": ["it_director"], "informed": ["sales_vp"], "notes": "信用额度季度复核"}  # fmt: skip
    assert vp.request("PUT", "/data-assets/record_type/account", json=full).status_code == 200

    only_owner = vp.request("PUT", "/data-assets/record_type/account",
                            json={"accountable_user_id": tenant["cfo"].user_id})  # fmt: skip
    assert only_owner.status_code == 200, only_owner.text
    entry = only_owner.json()
    assert {name: entry[name] for name in full} == full  # the RACI lists stay as they were
    assert entry["accountable_user_id"] == tenant["cfo"].user_id
    patched = vp.request("PATCH", "/data-assets/record_type/account", json={"informed": ["director"]}).json()
    assert (patched["informed"], patched["responsible"], patched["accountable_user_id"]) == (
        ["director"], ["manager"], tenant["cfo"].user_id,
    )  # fmt: skip

    # a rep may not read account.credit_line: they cannot answer for the account data nor its finance fields
    for path in ("/data-assets/record_type/account", "/data-assets/field_group/account.finance"):
        refused = vp.request("PATCH", path, json={"accountable_user_id": tenant["rep"].user_id})
        problem = assert_problem(refused, 422, field="accountable_user_id", code="cannot_read")
        assert "account.credit_line" in problem["errors"][0]["message"]
    assert vp.request("GET", "/data-assets").json()["items"][0]  # nothing half-written
    kept = next(
        item for item in vp.request("GET", "/data-assets").json()["items"]
        if (item["kind"], item["key"]) == ("record_type", "account")
    )  # fmt: skip
    assert kept["accountable_user_id"] == tenant["cfo"].user_id
    # a rep may answer for what they see whole; null clears the accountable person
    contact = vp.request(
        "PATCH", "/data-assets/record_type/contact", json={"accountable_user_id": tenant["rep"].user_id}
    )
    assert contact.status_code == 200, contact.text
    cleared = vp.request("PATCH", "/data-assets/record_type/account", json={"accountable_user_id": None}).json()
    assert (cleared["accountable_user_id"], cleared["needs_owner"], cleared["informed"]) == (None, True, ["director"])
