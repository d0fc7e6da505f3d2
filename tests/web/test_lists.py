"""The record lists: columns the reader may see, filters, sorting, cursor pages, HTMX fragments and
the export of the filtered list."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser


def test_a_rep_sees_own_accounts_without_the_credit_line_and_a_cfo_sees_it(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    Api(client, tenant["sales_vp"]).create(
        "accounts", {"name": "协和医院", "owner_id": tenant["rep"].user_id, "credit_line": "987654.00"}
    )

    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/accounts")
    assert page.status_code == 200
    assert "协和医院" in page.text
    assert "Credit line" not in page.text
    assert "987,654" not in page.text
    assert "987654" not in page.text

    cfo = browser(client, db, tenant["cfo"], locale="en")
    assert "¥987,654.00" in cfo.get("/accounts").text


def test_sorting_or_filtering_on_a_masked_field_says_so_and_shows_the_sort_applied(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """A rep may not read ``credit_line``: sorting or filtering on it is refused in words about
    sorting and filtering (not "may not set"), and the sort box shows the sort the table has."""
    rep = browser(client, db, tenant["rep"], locale="en")
    for query in ("sort=-credit_line", "credit_line__gt=1"):
        page = rep.get(f"/accounts?{query}")
        assert page.status_code == 200
        assert "Your role may not filter or sort on this field." in page.text
        assert "may not set" not in page.text
        assert not re.search(r'<option value="-credit_line"[^>]*selected', page.text)
        assert re.search(r'<option value="-id"\s+selected', page.text)


def test_filters_sort_and_htmx_return_the_table_only(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    for name, tier in [("甲医院", "A"), ("乙医院", "B"), ("丙医院", "A")]:
        api.create("accounts", {"name": name, "tier": tier})
    rep = browser(client, db, tenant["rep"], locale="en")

    fragment = rep.get("/accounts", params={"tier": "A", "sort": "name"}, headers={"HX-Request": "true"})

    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "<table" in fragment.text
    assert "甲医院" in fragment.text
    assert "丙医院" in fragment.text
    assert "乙医院" not in fragment.text
    assert fragment.text.index("丙医院") < fragment.text.index("甲医院")  # sorted by name (code points)


def test_a_bad_filter_is_explained_not_a_crash(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/opportunities", params={"amount__gte": "lots"})
    assert page.status_code == 200
    assert "These filters cannot be applied" in page.text


def test_cursor_pages_follow_each_other_without_repeats(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    for number in range(5):
        api.create("contacts", {"name": f"联系人{number}"})
    rep = browser(client, db, tenant["rep"], locale="en")

    first = rep.get("/contacts", params={"limit": "2", "sort": "name"})
    assert "联系人0" in first.text
    assert "联系人1" in first.text
    assert "联系人2" not in first.text
    assert "Show more" in first.text
    seen = ["联系人0", "联系人1"]
    query = first.text.split('hx-get="/contacts?')[-1].split('"')[0].replace("&amp;", "&")
    more = rep.get(f"/contacts?{query}", headers={"HX-Request": "true"})
    assert "<table" not in more.text
    assert "联系人2" in more.text
    assert "联系人3" in more.text
    assert not any(name in more.text for name in seen)


def test_a_stored_script_renders_as_text(client: TestClient, db: Database, tenant: Tenant) -> None:
    Api(client, tenant["rep"]).create("accounts", {"name": "<script>alert(1)</script>"})
    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/accounts")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_another_organizations_records_are_not_listed(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    Api(client, other_tenant["admin"]).create("accounts", {"name": "别家的客户"})
    admin = browser(client, db, tenant["admin"], locale="en")
    assert "别家的客户" not in admin.get("/accounts").text


def test_the_export_follows_the_filters_neutralizes_formulas_and_respects_masks(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    cfo = Api(client, tenant["sales_vp"])
    cfo.create(
        "accounts",
        {"name": "=cmd|' /C calc'!A0", "tier": "A", "owner_id": tenant["rep"].user_id, "credit_line": "5000.00"},
    )
    cfo.create("accounts", {"name": "不导出", "tier": "C", "owner_id": tenant["rep"].user_id})
    rep = browser(client, db, tenant["rep"], locale="en")

    exported = rep.get("/exports/accounts", params={"format": "csv", "tier": "A"})

    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [row["name"] for row in rows] == ["'=cmd|' /C calc'!A0"]
    assert "credit_line" not in rows[0]

    workbook = rep.get("/exports/accounts", params={"format": "xlsx", "tier": "A"})
    assert workbook.status_code == 200
    assert workbook.content[:2] == b"PK"

    cfo_page = browser(client, db, tenant["cfo"], locale="en")
    cfo_rows = list(
        csv.DictReader(io.StringIO(cfo_page.get("/exports/accounts?format=csv&tier=A").content.decode("utf-8-sig")))
    )
    assert cfo_rows[0]["credit_line"] == "5000.00"


def test_filtering_in_place_updates_the_export_links(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    table = rep.get("/accounts", params={"tier": "A"}, headers={"HX-Request": "true"})

    assert table.status_code == 200
    links = re.search(r'<span id="export-links"[^>]*hx-swap-oob="true"[^>]*>(.*?)</span>', table.text, re.S)
    assert links, table.text[:500]
    assert 'href="/exports/accounts?format=csv&amp;tier=A"' in links.group(1)
