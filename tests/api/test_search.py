"""GET /api/v1/search: pinyin initials, full pinyin, characters, tenancy and masks."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from closeloop.crm.searchkey import query_key, search_key
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag


def _ids(response_body: dict[str, object], kind: str) -> set[int]:
    groups = response_body["groups"]
    assert isinstance(groups, list)
    return {item["id"] for group in groups if group["type"] == kind for item in group["items"]}


def test_initials_full_pinyin_and_characters(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    unique = tag()
    account = rep.create("accounts", {"name": f"北京协和医院{unique}"})
    contact = rep.create("contacts", {"name": "欧阳娜娜", "account_id": account["id"]})
    deal = rep.create("opportunities", {"name": f"北京协和 CT 采购 {unique}", "account_id": account["id"]})

    for query in ("bjxh", "beijingxiehe", "协和医院", "Bei Jing Xie He"):
        body = rep.request("GET", "/search", params={"q": query}).json()
        assert account["id"] in _ids(body, "account"), query
    assert deal["id"] in _ids(rep.request("GET", "/search", params={"q": "bjxhccg"}).json(), "opportunity")
    contacts = rep.request("GET", "/search", params={"q": "oyn"}).json()
    assert contact["id"] in _ids(contacts, "contact")
    hit = next(item for group in contacts["groups"] for item in group["items"] if item["id"] == contact["id"])
    assert hit["account_name"] == account["name"]


def test_other_tenants_records_are_never_found(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    unique = tag()
    Api(client, other_tenant["admin"]).create("accounts", {"name": f"外部协和{unique}"})

    body = Api(client, tenant["admin"]).request("GET", "/search", params={"q": unique}).json()

    assert body["groups"] == []


def test_masked_fields_are_neither_returned_nor_matched(client: TestClient, tenant: Tenant) -> None:
    vp = Api(client, tenant["sales_vp"])
    unique = tag()
    vp.create(
        "opportunities",
        {"name": f"高毛利 {unique}", "margin": "77.70", "amount": "1000.00", "owner_id": tenant["rep"].user_id},
    )

    as_rep = Api(client, tenant["rep"]).request("GET", "/search", params={"q": unique}).json()
    as_vp = vp.request("GET", "/search", params={"q": "77.70"}).json()

    items = [item for group in as_rep["groups"] for item in group["items"]]
    assert items
    assert all("margin" not in item for item in items)
    assert as_vp["groups"] == []  # a masked (or any non-searched) field is not matched on


def test_an_empty_or_long_query_is_refused_naming_q(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])

    assert_problem(rep.request("GET", "/search", params={"q": "  "}), 422, field="q")
    assert_problem(rep.request("GET", "/search", params={"q": "x" * 101}), 422, field="q")


_HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


@given(st.text(alphabet=_HAN, min_size=1, max_size=12))
def test_a_chinese_name_is_found_by_its_characters_pinyin_and_initials(name: str) -> None:
    key = search_key(name)
    assert key is not None
    syllables = lazy_pinyin(name, style=Style.NORMAL)
    assert query_key(name) in key
    assert query_key("".join(syllables)) in key
    assert "".join(query_key(syllable)[:1] for syllable in syllables) in key


@given(st.text(max_size=40))
def test_any_text_is_found_by_itself_and_keys_hold_no_wildcards(text: str) -> None:
    key = search_key(text)
    reduced = query_key(text)
    if not reduced:
        assert key is None or "%" not in key
        return
    assert key is not None
    assert reduced in key
    assert "%" not in key
    assert "_" not in key
    assert key == key.casefold() or not key.isascii()
