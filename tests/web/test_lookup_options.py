"""Pick lists beyond their first page: a form's or a filter's list loads only the most recently
changed records; typing asks ``/options/<noun>`` for the others — by name, pinyin or initials,
within the reader's tenant and reach."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.web import records as record_pages
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH


def _labels(client: TestClient, noun: str, query: str) -> list[str]:
    answer = client.get(f"/options/{noun}", params={"q": query}, headers=ENGLISH)
    assert answer.status_code == 200, answer.text
    return [item["label"] for item in answer.json()["items"]]


def _beyond_the_loaded_options(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str
) -> dict[str, object]:
    """An account named ``name`` with three newer ones after it, pick lists loading two: the rep's
    lists do not hold it. Signs the rep in; returns the account."""
    api = Api(client, tenant["rep"])
    old = api.create("accounts", {"name": name})
    for n in range(3):
        api.create("accounts", {"name": f"较新的客户 {name} {n}"})
    monkeypatch.setattr(record_pages, "OPTION_LIMIT", 2)
    browse_as(client, db, tenant["rep"])
    return old


def test_an_account_beyond_the_loaded_options_is_found_by_pinyin_and_initials(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique = tag()
    old = _beyond_the_loaded_options(client, db, tenant, monkeypatch, f"北京协和医院 {unique}")

    form = client.get("/opportunities/new", headers=ENGLISH).text
    assert f'<option value="{old["id"]}"' not in form
    assert 'data-options-url="/options/account"' in form

    for query in ("bjxh", "beijingxiehe", "协和", unique):
        assert f"北京协和医院 {unique}" in _labels(client, "account", query), query


def test_a_filter_on_a_record_beyond_the_loaded_options_shows_it_chosen(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique = tag()
    old = _beyond_the_loaded_options(client, db, tenant, monkeypatch, f"早期客户 {unique}")

    page = client.get("/opportunities", params={"account_id": old["id"]}, headers=ENGLISH).text

    assert f'<option value="{old["id"]}" selected>早期客户 {unique}</option>' in page


def test_other_tenants_and_colleagues_records_are_not_offered(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    unique = tag()
    Api(client, other_tenant["admin"]).create("accounts", {"name": f"外部医院 {unique}"})
    Api(client, tenant["rep2"]).create("accounts", {"name": f"同事医院 {unique}"})
    Api(client, tenant["rep"]).create("accounts", {"name": f"自己的医院 {unique}"})
    browse_as(client, db, tenant["rep"])

    assert _labels(client, "account", unique) == [f"自己的医院 {unique}"]

    browse_as(client, db, tenant["manager"])
    assert sorted(_labels(client, "account", unique)) == sorted([f"同事医院 {unique}", f"自己的医院 {unique}"])


def test_names_that_start_with_the_query_come_first(client: TestClient, db: Database, tenant: Tenant) -> None:
    unique = tag()
    api = Api(client, tenant["rep"])
    api.create("accounts", {"name": f"上海{unique}医院"})
    api.create("accounts", {"name": f"{unique}集团"})
    browse_as(client, db, tenant["rep"])

    assert _labels(client, "account", unique)[0] == f"{unique}集团"


def test_bad_lookups_answer_clearly(client: TestClient, db: Database, tenant: Tenant) -> None:
    browse_as(client, db, tenant["rep"])

    assert client.get("/options/user", params={"q": "x"}, headers=ENGLISH).status_code == 404
    assert client.get("/options/account", params={"q": " "}, headers=ENGLISH).status_code == 422
    assert client.get("/options/account", params={"q": "x" * 101}, headers=ENGLISH).status_code == 422
    client.cookies.clear()
    signed_out = client.get("/options/account", params={"q": "x"}, headers=ENGLISH, follow_redirects=False)
    assert signed_out.status_code in (302, 303, 401)


def test_a_lookup_without_a_query_answers_a_problem_document_naming_q(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """The pick list's address answers JSON whatever it is asked — a browser's own request too
    (``Accept: text/html``), never the workspace's error page."""
    browse_as(client, db, tenant["rep"])

    for params in ({}, {"q": ""}, {"q": "  "}):
        answer = client.get("/options/account", params=params, headers={**ENGLISH, "Accept": "text/html"})
        problem = assert_problem(answer, 422, field="q", code="required")
        assert "<html" not in answer.text
        assert problem["code"] == "validation_failed"
    chinese = client.get("/options/account", headers={"Accept-Language": "zh-CN"}).json()
    assert chinese["errors"][0]["message"] == "此项必填。"
    unknown = client.get("/options/user", params={"q": "x"}, headers=ENGLISH)
    assert_problem(unknown, 404)


def test_a_partner_cannot_look_up_the_sellers_accounts(
    client: TestClient, db: Database, tenant: Tenant, partner: Tenant
) -> None:
    unique = tag()
    Api(client, tenant["admin"]).create("accounts", {"name": f"卖方客户 {unique}"})
    browse_as(client, db, partner["partner_user"])

    answer = client.get("/options/account", params={"q": unique}, headers=ENGLISH)

    assert answer.status_code in (200, 403)
    if answer.status_code == 200:
        assert answer.json()["items"] == []
