"""The search page: characters, pinyin and initials; tenancy and row scope; output escaped."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH


def test_initials_pinyin_and_characters_find_the_account(client: TestClient, db: Database, tenant: Tenant) -> None:
    unique = tag()
    account = Api(client, tenant["rep"]).create("accounts", {"name": f"北京协和医院 {unique}"})
    browse_as(client, db, tenant["rep"])

    for query in ("bjxh", "beijingxiehe", "协和", "BJXH"):
        page = client.get("/search", params={"q": f"{query}"}, headers=ENGLISH)
        assert page.status_code == 200
        assert f'href="/accounts/{account["id"]}"' in page.text, query


def test_the_search_box_is_in_the_top_bar(client: TestClient, db: Database, tenant: Tenant) -> None:
    browse_as(client, db, tenant["rep"])

    assert 'action="/search"' in client.get("/", headers=ENGLISH).text


def test_other_tenants_and_colleagues_records_are_not_found(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    unique = tag()
    Api(client, other_tenant["admin"]).create("accounts", {"name": f"外部医院{unique}"})
    Api(client, tenant["rep2"]).create("accounts", {"name": f"同事医院{unique}"})
    browse_as(client, db, tenant["rep"])

    page = client.get("/search", params={"q": unique}, headers=ENGLISH)

    assert "外部医院" not in page.text
    assert "同事医院" not in page.text
    assert "Nothing matches" in page.text


def test_a_stored_script_in_a_hit_is_escaped(client: TestClient, db: Database, tenant: Tenant) -> None:
    unique = tag()
    Api(client, tenant["rep"]).create("leads", {"name": f"<script>alert(1)</script>{unique}"})
    browse_as(client, db, tenant["rep"])

    page = client.get("/search", params={"q": unique}, headers=ENGLISH)

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
