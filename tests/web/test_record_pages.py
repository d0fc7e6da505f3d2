"""Create and edit forms of the records: the service's problems beside their inputs, nothing
stored on a problem, optimistic concurrency, masked fields absent, CSRF, foreign ids."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.test_settings_pages import browser, csrf_of


def _names(api: Api, plural: str) -> list[str]:
    response = api.request("GET", f"/{plural}")
    return [item.get("name") or item.get("subject") for item in response.json()["items"]]


def test_a_bad_value_is_shown_beside_its_input_and_nothing_is_stored(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get("/accounts/new")
    assert form.status_code == 200
    assert '<label for="f-name">' in form.text

    response = rep.post(
        "/accounts/new",
        data={"csrf": csrf_of(form.text), "name": "新客户", "employees": "many", "phone": "call me"},
    )

    assert response.status_code == 422
    html = response.text
    employees = re.search(r'<input id="f-employees"[^>]*>', html)
    assert employees
    assert 'aria-invalid="true"' in employees.group(0)
    assert 'aria-describedby="f-employees-error"' in employees.group(0)
    assert 'id="f-employees-error">Enter a whole number.' in html
    assert 'id="f-phone-error">This is not a phone number.' in html
    assert 'value="新客户"' in html  # the user's input is kept
    assert _names(Api(client, tenant["rep"]), "accounts") == []


def test_a_valid_account_is_created_and_the_browser_goes_to_its_page(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    token = csrf_of(rep.get("/accounts/new").text)

    response = rep.post(
        "/accounts/new",
        data={"csrf": token, "name": "北京协和医院", "tier": "A", "employees": "3200", "annual_revenue": "1200000"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    created = Api(client, tenant["rep"]).request("GET", "/accounts").json()["items"][0]
    assert response.headers["location"] == f"/accounts/{created['id']}"
    assert created["name"] == "北京协和医院"
    assert created["tier"] == "A"
    assert created["owner_id"] == tenant["rep"].user_id


def test_a_custom_field_is_an_input_with_its_own_validation(client: TestClient, db: Database, tenant: Tenant) -> None:
    from tests.api.test_custom_fields import Schema

    Schema(client, tenant).define(
        name="score",
        field_type="number",
        label_zh="区域评分",
        label_en="Region score",
        min_value="0",
        max_value="100",
        help_en="From the regional survey",
    )
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get("/accounts/new")
    assert 'name="custom.score"' in form.text
    assert "Region score" in form.text
    assert "From the regional survey" in form.text

    response = rep.post("/accounts/new", data={"csrf": csrf_of(form.text), "name": "某医院", "custom.score": "180"})

    assert response.status_code == 422
    field = re.search(r'<input id="f-custom-score"[^>]*>', response.text)
    assert field
    assert 'aria-invalid="true"' in field.group(0)
    assert 'id="f-custom-score-error"' in response.text
    assert _names(Api(client, tenant["rep"]), "accounts") == []

    saved = rep.post(
        "/accounts/new",
        data={"csrf": csrf_of(form.text), "name": "某医院", "custom.score": "80"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert Api(client, tenant["rep"]).request("GET", "/accounts").json()["items"][0]["custom"]["score"] == 80


def test_a_stale_edit_says_someone_else_changed_it_and_keeps_the_input(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    api = Api(client, tenant["rep"])
    account = api.create("accounts", {"name": "旧名字"})
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get(f"/accounts/{account['id']}/edit")
    assert f'name="version" value="{account["version"]}"' in form.text
    changed = api.request(
        "PATCH", f"/accounts/{account['id']}", json={"city": "上海"}, headers={"If-Match": f'"{account["version"]}"'}
    )
    assert changed.status_code == 200, changed.text

    response = rep.post(
        f"/accounts/{account['id']}/edit",
        data={"csrf": csrf_of(form.text), "version": str(account["version"]), "name": "我的新名字", "currency": "CNY"},
    )

    assert response.status_code == 409
    assert "changed by someone else" in response.text
    assert "Reload the latest version" in response.text
    assert 'value="我的新名字"' in response.text
    assert api.read("accounts", account["id"])["name"] == "旧名字"


def test_an_edit_saves_through_the_service(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    account = api.create("accounts", {"name": "旧名字", "city": "北京"})
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get(f"/accounts/{account['id']}/edit")
    assert 'value="北京"' in form.text

    response = rep.post(
        f"/accounts/{account['id']}/edit",
        data={
            "csrf": csrf_of(form.text),
            "version": str(account["version"]),
            "name": "新名字",
            "currency": "CNY",
            "owner_id": str(tenant["rep"].user_id),
        },
        follow_redirects=False,
    )

    assert response.status_code == 303
    stored = api.read("accounts", account["id"])
    assert stored["name"] == "新名字"
    assert stored["city"] is None


def test_a_rep_never_receives_the_margin_of_an_opportunity(client: TestClient, db: Database, tenant: Tenant) -> None:
    account = Api(client, tenant["rep"]).create("accounts", {"name": "客户"})
    opportunity = Api(client, tenant["sales_vp"]).create(
        "opportunities",
        {
            "name": "CT 采购",
            "account_id": account["id"],
            "owner_id": tenant["rep"].user_id,
            "amount": "100000",
            "margin": "37.25",
        },
    )
    rep = browser(client, db, tenant["rep"], locale="en")
    for path in [
        "/opportunities",
        f"/opportunities/{opportunity['id']}",
        f"/opportunities/{opportunity['id']}/edit",
        "/opportunities/new",
    ]:
        page = rep.get(path)
        assert page.status_code == 200, path
        assert "37.25" not in page.text, path
        assert 'name="margin"' not in page.text, path
        assert "Margin" not in page.text, path
    vp = browser(client, db, tenant["sales_vp"], locale="en")
    assert 'value="37.25"' in vp.get(f"/opportunities/{opportunity['id']}/edit").text


def test_foreign_records_are_not_found(client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = Api(client, other_tenant["admin"]).create("accounts", {"name": "别家"})
    rep = browser(client, db, tenant["rep"], locale="en")
    assert rep.get(f"/accounts/{theirs['id']}/edit").status_code == 404
    token = csrf_of(rep.get("/accounts/new").text)
    response = rep.post(f"/accounts/{theirs['id']}/edit", data={"csrf": token, "name": "x", "version": "1"})
    assert response.status_code == 404
    assert Api(client, other_tenant["admin"]).read("accounts", theirs["id"])["name"] == "别家"


def test_a_form_without_its_csrf_token_is_refused(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    response = rep.post("/accounts/new", data={"name": "无令牌"})
    assert response.status_code == 400
    assert _names(Api(client, tenant["rep"]), "accounts") == []


@pytest.mark.parametrize("kind", ["call", "visit"])
def test_logging_a_call_or_visit_on_an_account(client: TestClient, db: Database, tenant: Tenant, kind: str) -> None:
    account = Api(client, tenant["rep"]).create("accounts", {"name": "拜访客户"})
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get(f"/activities/new?account_id={account['id']}&type={kind}&next=/accounts/{account['id']}")
    assert form.status_code == 200
    assert re.search(rf'<option value="{kind}" selected>', form.text)
    assert re.search(rf'<option value="{account["id"]}" selected>拜访客户</option>', form.text)

    response = rep.post(
        f"/activities/new?account_id={account['id']}&type={kind}",
        data={
            "csrf": csrf_of(form.text),
            "kind": kind,
            "direction": "outbound",
            "subject": "介绍新品",
            "occurred_at": "2026-11-20T15:30",
            "account_id": str(account["id"]),
            "next": f"/accounts/{account['id']}",
        },
        follow_redirects=False,
    )

    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/accounts/{account['id']}"
    logged = Api(client, tenant["rep"]).request("GET", "/activities").json()["items"][0]
    assert logged["kind"] == kind
    assert logged["account_id"] == account["id"]
    assert logged["occurred_at"].startswith("2026-11-20T07:30")  # 15:30 in Beijing


def test_the_opportunity_page_shows_its_stage_history(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    opportunity = api.create("opportunities", {"name": "MRI 项目", "amount": "2500000"})
    moved = api.request(
        "POST",
        f"/opportunities/{opportunity['id']}/stage",
        json={"stage": "qualification"},
        headers={"If-Match": f'"{opportunity["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    rep = browser(client, db, tenant["rep"], locale="zh_CN")
    page = rep.get(f"/opportunities/{opportunity['id']}")
    assert page.status_code == 200
    assert "阶段历史" in page.text
    assert "需求确认" in page.text
    assert "¥2,500,000.00" in page.text


def test_an_opportunity_form_sets_and_clears_its_product_lines(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = Api(client, tenant["admin"])
    lines = [
        admin.create("product_lines", {"name": name, "code": code}) for name, code in (("影像", "IMG"), ("耗材", "CON"))
    ]
    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get("/opportunities/new")
    assert "Product lines" in form.text
    assert f'name="product_line_ids" value="{lines[0]["id"]}"' in form.text

    created = rep.post(
        "/opportunities/new",
        data={
            "csrf": csrf_of(form.text),
            "name": "CT 采购",
            "stage": "prospecting",
            "currency": "CNY",
            "product_line_ids": [str(line["id"]) for line in lines],
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    api = Api(client, tenant["rep"])
    opportunity = api.request("GET", "/opportunities").json()["items"][0]
    assert sorted(opportunity["product_line_ids"]) == sorted(line["id"] for line in lines)

    edit = rep.get(f"/opportunities/{opportunity['id']}/edit")
    assert re.search(rf'name="product_line_ids" value="{lines[1]["id"]}" checked', edit.text)
    cleared = rep.post(
        f"/opportunities/{opportunity['id']}/edit",
        data={
            "csrf": csrf_of(edit.text),
            "version": str(opportunity["version"]),
            "name": "CT 采购",
            "stage": "prospecting",
            "currency": "CNY",
            "owner_id": str(tenant["rep"].user_id),
        },
        follow_redirects=False,
    )
    assert cleared.status_code == 303, cleared.text
    assert api.read("opportunities", opportunity["id"])["product_line_ids"] == []


def test_a_record_deleted_from_its_form_can_be_undone_from_the_list(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    api = Api(client, tenant["manager"])
    account = api.create("accounts", {"name": f"待删除医院 {tag()}"})
    manager = browser(client, db, tenant["manager"], locale="zh_CN")
    form = manager.get(f"/accounts/{account['id']}/edit")
    assert f'action="/accounts/{account["id"]}/delete"' in form.text

    deleted = manager.post(
        f"/accounts/{account['id']}/delete",
        data={"csrf": csrf_of(form.text), "version": str(account["version"])},
        follow_redirects=False,
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/accounts?deleted={account['id']}"
    assert api.request("GET", f"/accounts/{account['id']}").status_code == 404
    listing = manager.get(deleted.headers["location"])
    assert "记录已删除" in listing.text
    assert f'action="/accounts/{account["id"]}/restore"' in listing.text

    restored = manager.post(
        f"/accounts/{account['id']}/restore", data={"csrf": csrf_of(listing.text)}, follow_redirects=False
    )
    assert restored.status_code == 303
    assert api.read("accounts", account["id"])["name"] == account["name"]
    actions = [entry["action"] for entry in api.request("GET", f"/accounts/{account['id']}/history").json()["items"]]
    assert {"account.deleted", "account.restored"} <= set(actions)


def test_a_stale_or_forbidden_delete_changes_nothing(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["manager"])
    account = api.create("accounts", {"name": f"保留医院 {tag()}", "owner_id": tenant["rep"].user_id})
    manager = browser(client, db, tenant["manager"], locale="en")
    token = csrf_of(manager.get(f"/accounts/{account['id']}/edit").text)
    api.patch("accounts", account["id"], {"city": "上海"})  # someone saves first
    stale = manager.post(f"/accounts/{account['id']}/delete", data={"csrf": token, "version": str(account["version"])})
    assert stale.status_code == 412
    assert api.read("accounts", account["id"])["city"] == "上海"
    assert manager.post(f"/accounts/{account['id']}/delete", data={}).status_code == 400  # no CSRF token

    rep = browser(client, db, tenant["rep"], locale="en")
    form = rep.get(f"/accounts/{account['id']}/edit")
    assert "/delete" not in form.text  # a rep may not delete: no button
    refused = rep.post(f"/accounts/{account['id']}/delete", data={"csrf": csrf_of(form.text)})
    assert refused.status_code == 403
    assert api.read("accounts", account["id"])["name"] == account["name"]


def test_a_service_refusal_is_shown_in_the_readers_language(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    opportunity = api.create("opportunities", {"name": f"开放商机 {tag()}", "owner_id": tenant["rep"].user_id})
    rep = browser(client, db, tenant["rep"], locale="zh_CN")
    form = rep.get(f"/opportunities/{opportunity['id']}/edit")
    refused = rep.post(
        f"/opportunities/{opportunity['id']}/edit",
        data={
            "csrf": csrf_of(form.text),
            "version": str(opportunity["version"]),
            "name": opportunity["name"],
            "stage": "prospecting",
            "currency": "CNY",
            "lost_reason": "价格太高",
        },
    )
    assert refused.status_code == 422
    assert 'id="f-lost-reason-error">只有已输单的商机才能填写输单原因' in refused.text
    assert api.read("opportunities", opportunity["id"])["lost_reason"] is None


def test_an_activity_logged_on_the_web_must_be_about_something(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = browser(client, db, tenant["rep"], locale="zh_CN")
    form = rep.get("/activities/new")
    refused = rep.post("/activities/new", data={"csrf": csrf_of(form.text), "kind": "call"})
    assert refused.status_code == 422
    assert "请选择这条活动所属的客户、联系人、商机或线索" in refused.text
    assert Api(client, tenant["rep"]).request("GET", "/activities").json()["items"] == []
