"""Custom fields (GOV-1): one definition drives validation, the API schema, filters and sorting,
imports, exports and field visibility."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from closeloop.db.session import Database
from closeloop.governance.customfields.types import FieldRule, FieldType, ValueProblem, clean_value
from closeloop.integrations.importing.jobs import process_import_job
from closeloop.integrations.importing.models import ImportStatus
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

Body = dict[str, Any]


def signed_off(client: TestClient, tenant: Tenant, response: Any) -> Body:
    """The change request a schema change answered, approved by the sales VP and the IT director."""
    assert response.status_code == 202, response.text
    request_id = response.json()["id"]
    for role in ("sales_vp", "it_director"):
        approved = Api(client, tenant[role]).request("POST", f"/change-requests/{request_id}/approve")
        assert approved.status_code == 200, approved.text
    result: Body = approved.json()
    assert result["status"] == "applied", result
    return result


class Schema:
    """Schema changes as sales ops make them: the admin asks, the sales VP and IT director sign off."""

    def __init__(self, client: TestClient, tenant: Tenant) -> None:
        self.client, self.tenant = client, tenant
        self.admin = Api(client, tenant["admin"])

    def define(self, **fields: Any) -> Body:
        body = {"record_type": "account", "label_zh": "字段", "label_en": "Field", **fields}
        applied = signed_off(self.client, self.tenant, self.admin.request("POST", "/custom-fields", json=body))
        definition: Body = self.admin.request("GET", f"/custom-fields/{applied['target_id']}").json()
        return definition

    def retire(self, definition_id: int) -> Body:
        return signed_off(self.client, self.tenant, self.admin.request("DELETE", f"/custom-fields/{definition_id}"))


@pytest.fixture
def schema(client: TestClient, tenant: Tenant) -> Schema:
    return Schema(client, tenant)


@pytest.fixture
def vp(schema: Schema) -> Schema:
    return schema


def define(schema: Schema, **fields: Any) -> Body:
    return schema.define(**fields)


@pytest.fixture
def rep(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["rep"])


@pytest.fixture
def fields(vp: Schema) -> dict[str, Body]:
    """A field of every importable kind on accounts."""
    return {
        "score": define(
            vp,
            name="score",
            field_type="number",
            label_zh="区域评分",
            label_en="Region score",
            min_value="0",
            max_value="100",
        ),
        "budget": define(vp, name="budget", field_type="money", label_zh="年度预算", label_en="Annual budget"),
        "licence": define(
            vp, name="licence", field_type="text", label_zh="许可证号", label_en="Licence no", pattern=r"[A-Z]{2}\d{6}"
        ),
        "renewal": define(vp, name="renewal", field_type="date", label_zh="续约日期", label_en="Renewal date"),
        "channel": define(
            vp,
            name="channel",
            field_type="choice",
            label_zh="渠道",
            label_en="Channel",
            choices=[
                {"value": "direct", "label_zh": "直销", "label_en": "Direct"},
                {"value": "dealer", "label_zh": "经销", "label_en": "Dealer"},
            ],
            default="direct",
        ),
        "depts": define(
            vp,
            name="depts",
            field_type="multi_choice",
            label_zh="科室",
            label_en="Departments",
            choices=[
                {"value": "放射科", "label_zh": "放射科", "label_en": "Radiology"},
                {"value": "检验科", "label_zh": "检验科", "label_en": "Laboratory"},
                {"value": "心内科", "label_zh": "心内科", "label_en": "Cardiology"},
            ],
        ),
        "key_account": define(
            vp, name="key_account", field_type="boolean", label_zh="重点客户", label_en="Key account"
        ),
    }


def test_a_defined_field_appears_in_the_list_and_the_record_schema(
    vp: Schema, rep: Api, fields: dict[str, Body]
) -> None:
    listed = rep.request("GET", "/custom-fields", params={"record_type": "account"}).json()["items"]
    schema = rep.request("GET", "/schema/accounts").json()
    openapi = vp.client.get("/api/openapi.json").json()

    assert [item["name"] for item in listed] == list(fields)
    custom = schema["properties"]["custom"]["properties"]
    assert custom["score"]["anyOf"][0] == {"type": ["number", "string"], "minimum": 0.0, "maximum": 100.0}
    assert custom["channel"]["anyOf"][0]["enum"] == ["direct", "dealer"]
    assert custom["channel"]["default"] == "direct"
    assert custom["depts"]["anyOf"][0]["items"]["enum"] == ["放射科", "检验科", "心内科"]
    assert (custom["score"]["title"], custom["score"]["x-label-zh"]) == ("Region score", "区域评分")
    assert "custom" in openapi["components"]["schemas"]["AccountRead"]["properties"]
    assert "credit_line" not in schema["properties"]  # the rep may not read it, so it is not in their schema


def test_values_are_validated_and_nothing_is_stored_when_one_is_wrong(rep: Api, fields: dict[str, Body]) -> None:
    before = rep.list_ids("accounts")
    bad = {
        "score": 101,
        "licence": "ab123",
        "renewal": "2026-02-30",
        "channel": "online",
        "depts": ["放射科", "骨科"],
        "key_account": "maybe",
        "nonsense": 1,
    }

    response = rep.request("POST", "/accounts", json={"name": f"校验医院 {tag()}", "custom": bad})

    problem = assert_problem(response, 422)
    assert {error["field"]: error["code"] for error in problem["errors"]} == {
        "custom.score": "out_of_range",
        "custom.licence": "pattern",
        "custom.renewal": "invalid",
        "custom.channel": "not_a_choice",
        "custom.depts": "not_a_choice",
        "custom.key_account": "invalid",
        "custom.nonsense": "unknown",
    }
    assert rep.list_ids("accounts") == before


def test_values_are_stored_read_merged_cleared_and_in_the_history(rep: Api, fields: dict[str, Body]) -> None:
    account = rep.create(
        "accounts",
        {
            "name": f"自定义医院 {tag()}",
            "custom": {"score": "87.5", "budget": 1250000, "depts": ["放射科", "检验科"], "key_account": "是"},
        },
    )

    assert account["custom"] == {
        "score": 87.5,
        "budget": "1250000.00",
        "licence": None,
        "renewal": None,
        "channel": "direct",  # the default
        "depts": ["放射科", "检验科"],
        "key_account": True,
    }
    changed = rep.patch("accounts", account["id"], {"custom": {"score": 90, "budget": None, "licence": "SH123456"}})
    assert changed.status_code == 200, changed.text
    after = changed.json()["custom"]
    assert (after["score"], after["budget"], after["licence"], after["depts"]) == (
        90,
        None,
        "SH123456",
        ["放射科", "检验科"],
    )
    history = rep.request("GET", f"/accounts/{account['id']}/history").json()["items"]
    assert history[0]["changes"] == {
        "custom.budget": ["1250000.0", None],  # the audit trail writes numbers with a fraction as text
        "custom.licence": [None, "SH123456"],
        "custom.score": ["87.5", 90],
    }
    assert history[1]["changes"]["custom.channel"] == [None, "direct"]


def test_required_fields_must_be_given_on_create_and_not_cleared(vp: Schema, rep: Api) -> None:
    define(vp, name="license_type", field_type="text", required=True)

    missing = rep.request("POST", "/accounts", json={"name": f"缺字段医院 {tag()}"})
    account = rep.create("accounts", {"name": f"全字段医院 {tag()}", "custom": {"license_type": "甲类"}})
    cleared = rep.patch("accounts", account["id"], {"custom": {"license_type": None}})
    renamed = rep.patch("accounts", account["id"], {"name": f"改名医院 {tag()}"})

    assert_problem(missing, 422, field="custom.license_type", code="required")
    assert_problem(cleared, 422, field="custom.license_type", code="required")
    assert renamed.status_code == 200


def _names(api: Api, **params: Any) -> list[str]:
    response = api.request("GET", "/accounts", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_lists_filter_and_sort_on_custom_fields(rep: Api, fields: dict[str, Body]) -> None:
    suffix = tag()
    values = {
        "甲": {"score": 10, "channel": "dealer", "depts": ["放射科"], "renewal": "2026-01-15", "key_account": True},
        "乙": {"score": 55.5, "channel": "direct", "depts": ["检验科", "心内科"], "renewal": "2026-06-01"},
        "丙": {"score": 99, "channel": "dealer", "depts": ["心内科"], "licence": "BJ000001"},
        "丁": {},
    }
    for name, custom in values.items():
        rep.create("accounts", {"name": f"{name}{suffix}", "custom": custom})

    def names(**params: Any) -> list[str]:
        return [n.removesuffix(suffix) for n in _names(rep, q=suffix, **params)]

    assert names(**{"custom.score__gte": "50"}, sort="custom.score") == ["乙", "丙"]
    assert names(**{"custom.channel": "dealer"}, sort="-custom.score") == ["丙", "甲"]
    assert names(**{"custom.depts__contains": "心内科"}, sort="name") == sorted(["乙", "丙"])
    assert names(**{"custom.renewal__lt": "2026-03-01"}) == ["甲"]
    assert names(**{"custom.key_account": "true"}) == ["甲"]
    assert sorted(names(**{"custom.score__isnull": "true"})) == ["丁"]
    assert names(**{"custom.licence__startswith": "bj"}) == ["丙"]
    # sorted by a custom field, page by page, nulls last
    pages: list[str] = []
    params: dict[str, Any] = {"q": suffix, "sort": "-custom.score", "limit": 1}
    while True:
        page = rep.request("GET", "/accounts", params=params).json()
        pages.extend(item["name"].removesuffix(suffix) for item in page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert pages == ["丙", "乙", "甲", "丁"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"custom.score__gte": "many"}, "custom.score__gte"),
        ({"custom.channel": "online"}, "custom.channel"),
        ({"custom.depts__eq": "放射科"}, "custom.depts__eq"),
        ({"custom.nothing": "1"}, "custom.nothing"),
        ({"sort": "custom.depts"}, "sort"),
    ],
)
def test_a_bad_custom_filter_names_the_parameter(
    rep: Api, fields: dict[str, Body], params: dict[str, str], field: str
) -> None:
    assert_problem(rep.request("GET", "/accounts", params=params), 422, field=field)


def test_a_field_visible_to_some_roles_is_masked_for_the_others_on_every_path(
    schema: Schema, rep: Api, client: TestClient, tenant: Tenant
) -> None:
    define(schema, name="discount_cap", field_type="number", label_zh="折扣上限", visible_to=["sales_vp", "cfo"])
    vp = Api(client, tenant["sales_vp"])
    account = vp.create(
        "accounts", {"name": f"保密医院 {tag()}", "owner_id": tenant["rep"].user_id, "custom": {"discount_cap": 12}}
    )
    vp.patch("accounts", account["id"], {"custom": {"discount_cap": 15}})

    read = rep.read("accounts", account["id"])
    listed = rep.request("GET", "/custom-fields").json()["items"]
    history = rep.request("GET", f"/accounts/{account['id']}/history").json()["items"]
    exported = client.get("/api/v1/exports/accounts", headers=tenant["rep"].headers).content.decode("utf-8-sig")
    filtered = rep.request("GET", "/accounts", params={"custom.discount_cap__gt": "10"})
    written = rep.patch("accounts", account["id"], {"custom": {"discount_cap": 90}})

    assert "discount_cap" not in read["custom"]
    assert "discount_cap" not in [item["name"] for item in listed]
    assert all("custom.discount_cap" not in item["changes"] for item in history)
    assert "discount_cap" not in exported
    assert_problem(filtered, 422, field="custom.discount_cap__gt")
    assert_problem(written, 403, field="custom.discount_cap")
    assert vp.read("accounts", account["id"])["custom"]["discount_cap"] == 15


def test_export_and_import_carry_custom_fields(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    rep: Api,
    fields: dict[str, Body],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    from closeloop.api.routers import imports as imports_router
    from closeloop.config import settings

    monkeypatch.setattr(settings, "var_dir", tmp_path)
    queued: list[int] = []
    monkeypatch.setattr(imports_router, "enqueue_import", queued.append)
    suffix = tag()
    rep.create("accounts", {"name": f"导出医院{suffix}", "custom": {"score": 42, "depts": ["放射科", "心内科"]}})

    exported = client.get("/api/v1/exports/accounts", params={"q": suffix}, headers=tenant["rep"].headers)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert (rows[0]["custom.score"], rows[0]["custom.depts"], rows[0]["custom.channel"]) == (
        "42",
        "放射科; 心内科",
        "direct",
    )

    upload = (
        "客户名称,区域评分,科室,Renewal date,渠道\n"
        f"导入医院{suffix},77,放射科;检验科,2026/09/01,经销\n"
        f"坏行医院{suffix},700,放射科,2026-09-01,dealer\n"
    ).encode()
    response = client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("客户.csv", upload, "text/csv")},
        data={"entity": "accounts"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["mapping"] == {
        "客户名称": "name",
        "区域评分": "custom.score",
        "科室": "custom.depts",
        "Renewal date": "custom.renewal",
        "渠道": "custom.channel",
    }
    assert process_import_job(db, job["id"]) is ImportStatus.DONE
    report = client.get(f"/api/v1/imports/{job['id']}", headers=tenant["manager"].headers).json()["report"]
    assert (report["created"], report["invalid"]) == (1, 1), report["problems"]
    assert report["problems"][0]["column"] == "区域评分"
    imported = Api(client, tenant["manager"]).request("GET", "/accounts", params={"q": f"导入医院{suffix}"}).json()
    assert imported["items"][0]["custom"] == {
        "score": 77,
        "budget": None,
        "licence": None,
        "renewal": "2026-09-01",
        "channel": "dealer",
        "depts": ["放射科", "检验科"],
        "key_account": None,
    }


def test_a_retired_field_disappears_and_its_values_return_with_it(schema: Schema, rep: Api) -> None:
    field = define(schema, name="tier_note", field_type="text")
    account = rep.create("accounts", {"name": f"退役医院 {tag()}", "custom": {"tier_note": "保留"}})
    vp = schema.admin

    schema.retire(field["id"])
    assert "tier_note" not in rep.read("accounts", account["id"])["custom"]
    assert_problem(rep.patch("accounts", account["id"], {"custom": {"tier_note": "x"}}), 422, field="custom.tier_note")
    other_type = vp.request(
        "POST",
        "/custom-fields",
        json={"record_type": "account", "name": "tier_note", "field_type": "number", "label_zh": "x", "label_en": "x"},
    )
    assert_problem(other_type, 409, field="name")

    define(schema, name="tier_note", field_type="text")
    assert rep.read("accounts", account["id"])["custom"]["tier_note"] == "保留"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name", "field_type": "text"}, "name"),
        ({"name": "c", "field_type": "choice"}, "choices"),
        ({"name": "l", "field_type": "record_link"}, "link_type"),
        ({"name": "p", "field_type": "text", "pattern": "([a-z"}, "pattern"),
        ({"name": "r", "field_type": "number", "min_value": "5", "max_value": "1"}, "max_value"),
        ({"name": "d", "field_type": "number", "max_value": "10", "default": 11}, "default"),
        ({"name": "t", "field_type": "text", "record_type": "quote"}, "record_type"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field(schema: Schema, body: dict[str, Any], field: str) -> None:
    response = schema.admin.request(
        "POST", "/custom-fields", json={"record_type": "account", "label_zh": "x", "label_en": "x", **body}
    )

    assert_problem(response, 422, field=field)


def test_user_and_record_link_fields_point_only_at_what_the_writer_can_see(
    schema: Schema, rep: Api, client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    define(schema, name="champion_user", field_type="user")
    define(schema, name="parent_deal", field_type="record_link", link_type="opportunity")
    vp = Api(client, tenant["sales_vp"])
    hidden = vp.create(
        "opportunities",
        {
            "name": f"别人的商机 {tag()}",
            "account_id": vp.create("accounts", {"name": f"别人的客户 {tag()}", "owner_id": tenant["rep2"].user_id})[
                "id"
            ],
            "owner_id": tenant["rep2"].user_id,
        },
    )

    foreign_user = rep.request(
        "POST", "/accounts", json={"name": f"a {tag()}", "custom": {"champion_user": other_tenant["rep"].user_id}}
    )
    hidden_deal = rep.request("POST", "/accounts", json={"name": f"b {tag()}", "custom": {"parent_deal": hidden["id"]}})
    fine = rep.create("accounts", {"name": f"c {tag()}", "custom": {"champion_user": tenant["rep2"].user_id}})

    assert_problem(foreign_user, 422, field="custom.champion_user", code="not_found")
    assert_problem(hidden_deal, 422, field="custom.parent_deal", code="not_found")
    assert fine["custom"]["champion_user"] == tenant["rep2"].user_id


def test_another_organization_neither_sees_nor_uses_the_fields(
    client: TestClient, fields: dict[str, Body], other_tenant: Tenant
) -> None:
    other = Api(client, other_tenant["sales_vp"])

    assert other.request("GET", "/custom-fields").json()["items"] == []
    assert_problem(other.request("GET", f"/custom-fields/{fields['score']['id']}"), 404)
    assert_problem(
        other.request("POST", "/accounts", json={"name": "x", "custom": {"score": 1}}), 422, field="custom.score"
    )


# --- the value rules, for any input -------------------------------------------------------------------


@given(st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False))
def test_a_number_in_range_is_kept_and_one_outside_is_refused(value: Decimal) -> None:
    rule = FieldRule("n", FieldType.NUMBER, min_value=Decimal(0), max_value=Decimal(500))
    if Decimal(0) <= value <= Decimal(500):
        assert Decimal(str(clean_value(rule, str(value)))) == value
    else:
        with pytest.raises(ValueProblem):
            clean_value(rule, value)


@given(st.text(max_size=20), st.lists(st.text(min_size=1, max_size=5).filter(str.strip), max_size=4, unique=True))
def test_a_choice_is_accepted_exactly_when_it_is_listed(value: str, choices: list[str]) -> None:
    rule = FieldRule("c", FieldType.CHOICE, choices=tuple(c.strip() for c in choices))
    if not value.strip():
        assert clean_value(rule, value) is None
    elif value.strip() in rule.choices:
        assert clean_value(rule, value) == value.strip()
    else:
        with pytest.raises(ValueProblem):
            clean_value(rule, value)


def test_a_formula_field_is_computed_filtered_sorted_and_masked_by_its_inputs(
    schema: Schema, rep: Api, client: TestClient, tenant: Tenant
) -> None:
    from tests.samples import new_product

    define(
        schema,
        name="sales_90d",
        field_type="formula",
        label_zh="近90天销售额",
        label_en="Sales, last 90 days",
        formula="SUM(orders.amount WHERE days_ago <= 90)",
    )
    define(
        schema,
        name="credit_left",
        field_type="formula",
        label_zh="剩余信用额度",
        label_en="Credit left",
        formula="credit_line - SUM(orders.amount)",
    )
    product = new_product(Api(client, tenant["admin"]), list_price="100.00")
    suffix = tag()
    busy = rep.create("accounts", {"name": f"大客户{suffix}"})
    quiet = rep.create("accounts", {"name": f"小客户{suffix}"})
    for account, quantity in ((busy, "5"), (quiet, "1")):
        rep.create(
            "orders", {"account_id": account["id"], "lines": [{"product_id": product["id"], "quantity": quantity}]}
        )
    vp = Api(client, tenant["sales_vp"])
    vp.patch("accounts", busy["id"], {"credit_line": "2000.00"})

    read = rep.read("accounts", busy["id"])
    listed = rep.request(
        "GET", "/accounts", params={"q": suffix, "custom.sales_90d__gte": "300", "sort": "-custom.sales_90d"}
    ).json()["items"]
    by_sales = rep.request("GET", "/accounts", params={"q": suffix, "sort": "custom.sales_90d"}).json()["items"]

    assert read["custom"]["sales_90d"] == 500.0
    assert "credit_left" not in read["custom"]  # it reads credit_line, which a rep may not see
    assert [item["name"] for item in listed] == [f"大客户{suffix}"]
    assert [item["name"] for item in by_sales] == [f"小客户{suffix}", f"大客户{suffix}"]
    assert vp.read("accounts", busy["id"])["custom"]["credit_left"] == 1500.0
    assert_problem(
        rep.request("GET", "/accounts", params={"custom.credit_left__gt": "0"}), 422, field="custom.credit_left__gt"
    )
    assert_problem(
        rep.patch("accounts", busy["id"], {"custom": {"sales_90d": 1}}), 422, field="custom.sales_90d", code="computed"
    )


def test_a_bad_formula_is_refused_with_its_position(schema: Schema) -> None:
    response = schema.admin.request(
        "POST",
        "/custom-fields",
        json={
            "record_type": "account",
            "name": "broken",
            "field_type": "formula",
            "label_zh": "坏",
            "label_en": "Broken",
            "formula": "SUM(orders.amout)",
        },
    )

    problem = assert_problem(response, 422, field="formula")
    assert "amount" in problem["detail"]  # did you mean …


def test_lineage_shows_what_a_formula_reads_and_what_reads_a_field(
    schema: Schema, client: TestClient, tenant: Tenant
) -> None:
    define(
        schema,
        name="sales_90d",
        field_type="formula",
        label_zh="近90天销售额",
        label_en="Sales, 90 days",
        formula="sum(orders.amount where days_ago <= 90)",
    )
    define(
        schema,
        name="credit_left",
        field_type="formula",
        label_zh="剩余信用额度",
        label_en="Credit left",
        formula="credit_line - SUM(orders.amount)",
    )
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])

    formula = vp.request("GET", "/lineage/account/custom.sales_90d").json()
    credit = vp.request("GET", "/lineage/account/credit_line").json()
    amount = vp.request("GET", "/lineage/order/total").json()
    as_rep = rep.request("GET", "/lineage/account/custom.credit_left")

    assert formula["transformation"] == "SUM(orders.amount WHERE days_ago <= 90)"
    assert formula["upstream"] == [
        {"record_type": "order", "field": "ordered_at"},
        {"record_type": "order", "field": "total"},
    ]
    assert (formula["refresh"], formula["owner_id"]) == ("computed when the record is read", tenant["admin"].user_id)
    assert [d["field"] for d in credit["downstream"]] == ["custom.credit_left"]
    assert sorted(d["field"] for d in amount["downstream"]) == ["custom.credit_left", "custom.sales_90d"]
    # the formula reads the credit line, which is not the rep's to see: the field is masked, so not found
    assert_problem(as_rep, 404)
    assert_problem(rep.request("GET", "/lineage/account/credit_line"), 404)
    assert_problem(rep.request("GET", "/lineage/account/nonsense"), 404)
