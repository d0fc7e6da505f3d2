"""The formula editor (/settings/formulas): who may open it, the vocabulary it suggests (never a
masked field), the check with the error's position, the preview on sample records, and asking for
the formula field as a change request."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from closeloop.crm import changerequests, formula_vocabulary
from closeloop.db.session import Database
from closeloop.governance.formulas import FUNCTIONS, normalize
from closeloop.web import formula_messages
from closeloop.web.formulas import EXAMPLES_BY_KEY
from closeloop.web.i18n import translations
from tests.factories import Tenant
from tests.governance.test_formulas_records import DEALER_HEALTH, MATCH, TURNOVER_DAYS, Records
from tests.web.test_settings_pages import browser, csrf_of

ENGLISH = {"Accept-Language": "en"}


def vocabulary_of(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="fe-vocabulary">(.*?)</script>', page, re.S)
    assert match
    found: dict[str, object] = json.loads(match.group(1))
    return found


def test_the_editor_opens_for_a_schema_manager_with_the_vocabulary_of_each_record_type(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    page = browser(client, db, tenant["sales_vp"]).get("/settings/formulas")

    assert page.status_code == 200
    assert "公式编辑器" in page.text
    assert "申请此公式字段" in page.text
    assert '<a href="/settings/formulas" aria-current="page">公式编辑器</a>' in page.text
    words = vocabulary_of(page.text)
    assert sorted(words) == ["account", "contact", "lead", "opportunity"]
    account = words["account"]
    assert isinstance(account, dict)
    fields = {f["name"]: f["type"] for f in account["fields"]}
    assert fields["annual_revenue"] == "number"
    assert fields["credit_line"] == "number"
    relations = {r["name"]: r for r in account["relations"]}
    assert relations["child_orders"]["days_ago"] is True
    assert "amount" in {f["name"] for f in relations["orders"]["fields"]}
    assert [f["name"] for f in account["functions"]] == list(FUNCTIONS)
    assert "IF(condition, then, otherwise)" in {f["signature"] for f in account["functions"]}


def test_a_rep_gets_the_403_page_and_no_link(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")

    page = rep.get("/settings/formulas")

    assert page.status_code == 403
    assert "manage or sign off schema changes" in page.text
    assert 'href="/settings/formulas"' not in rep.get("/").text


def test_the_it_director_checks_and_previews_read_only_and_never_sees_a_masked_field(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    it = browser(client, db, tenant["it_director"], locale="en")

    page = it.get("/settings/formulas", headers=ENGLISH)

    assert page.status_code == 200
    assert "Read-only" in page.text
    assert 'id="fe-request"' not in page.text
    assert 'href="/settings/formulas"' not in it.get("/").text  # not in the navigation: not a schema manager
    words = vocabulary_of(page.text)
    account, opportunity = words["account"], words["opportunity"]
    assert isinstance(account, dict)
    assert isinstance(opportunity, dict)
    assert "credit_line" not in {f["name"] for f in account["fields"]}
    assert "margin" not in {f["name"] for f in opportunity["fields"]}
    related = {r["name"]: {f["name"] for f in r["fields"]} for r in account["relations"]}
    assert "margin" not in related["opportunities"]
    assert "margin" not in related["quotes"]
    assert "credit_line" not in related["child_accounts"]
    # typed anyway, a masked field's values stay hidden
    shown = it.post(
        "/settings/formulas/preview",
        data={"csrf": csrf_of(page.text), "record_type": "opportunity", "expression": "margin * 2"},
    )
    assert shown.status_code == 200
    assert "opportunity.margin" in shown.text
    assert "fe-values" not in shown.text
    refused = it.post(
        "/settings/formulas/request",
        data={"csrf": csrf_of(page.text), "record_type": "account", "expression": "1", "name": "x", "label_zh": "x"},
    )
    assert refused.status_code == 403


def test_the_vocabulary_api_leaves_masked_fields_out_for_a_rep(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    def names(member: str) -> tuple[set[str], dict[str, set[str]]]:
        response = client.get("/api/v1/formulas/vocabulary/opportunities", headers=tenant[member].headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return {f["name"] for f in body["fields"]}, {
            r["name"]: {f["name"] for f in r["fields"]} for r in body["relations"]
        }

    rep_fields, _ = names("rep")
    vp_fields, _ = names("sales_vp")
    assert "margin" not in rep_fields
    assert "amount" in rep_fields
    assert "margin" in vp_fields
    accounts = client.get("/api/v1/formulas/vocabulary/accounts", headers=tenant["rep"].headers).json()
    assert "credit_line" not in {f["name"] for f in accounts["fields"]}
    assert "margin" not in {f["name"] for r in accounts["relations"] for f in r["fields"]}
    assert client.get("/api/v1/formulas/vocabulary/widgets", headers=tenant["rep"].headers).status_code == 404


def test_a_bad_formula_shows_its_error_at_its_position_in_the_readers_language(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    vp = browser(client, db, tenant["sales_vp"])
    token = csrf_of(vp.get("/settings/formulas").text)
    text = "ROUND(annual_revenue / 10000, 1) + revnue"

    shown = vp.post("/settings/formulas/preview", data={"csrf": token, "record_type": "account", "expression": text})

    assert shown.status_code == 200
    assert 'data-state="error"' in shown.text
    start = text.index("revnue")
    assert f'data-start="{start}" data-end="{start + 6}"' in shown.text
    assert 'data-line="1" data-column="36"' in shown.text
    assert "未知字段 &#39;revnue&#39;；是否想写 &#39;annual_revenue&#39;？" in shown.text
    assert "第 1 行，第 36 列" in shown.text
    assert '<mark class="">revnue</mark>' in shown.text


def test_common_mistakes_read_wholly_in_chinese() -> None:
    gettext = translations("zh_CN").gettext
    for english in (
        "unknown field 'revnue'; did you mean 'revenue'?",
        "the formula ends too early; expected a value (a number, a text, a field or a function)",
        "unexpected ')'; expected an operator or the end of the formula",
        "IF takes 3 values, not 2",
        "ROUND takes 1 or 2 values, not 3",
        "cannot add text to number; use & to join texts",
        "'=' compares values of one type: a number and a text",
        "unknown function SUMM; did you mean 'SUM'?",
        "'orders' reads a list of related records; use an aggregate such as COUNT(orders) or SUM(orders.amount)",
        "IF's first value is the condition: true/false, not a number",
    ):
        chinese = formula_messages.translate(english, gettext)
        words = re.sub(r"'[^']*'|[A-Z_]+\(?[\w.]*\)?|[\w.]*\(.*?\)", "", chinese)
        assert not re.search(r"[a-z]{3,}", words), (english, chinese)


def test_the_preview_computes_the_seed_example_on_dealers(client: TestClient, db: Database, tenant: Tenant) -> None:
    rows = Records(db, tenant)
    dealer = rows.account("华东医疗经销")
    hospital = rows.account("苏州明德医院", parent_account_id=dealer)
    rows.order(dealer, "100000.00", days_ago=10)
    rows.order(hospital, "55000.00", days_ago=20)
    vp = browser(client, db, tenant["sales_vp"], locale="en")
    page = vp.get("/settings/formulas?example=sell_through_match")
    assert "SUM(child_orders.amount WHERE days_ago &lt;= 90" in page.text

    shown = vp.post(
        "/settings/formulas/preview",
        data={"csrf": csrf_of(page.text), "record_type": "account", "expression": MATCH, "sample": "dealers"},
    )

    assert 'data-state="ok"' in shown.text
    assert 'data-result-type="number"' in shown.text
    row = re.search(rf'<tr data-id="{dealer}">.*?</tr>', shown.text, re.S)
    assert row
    assert "华东医疗经销" in row.group(0)
    assert "0.55" in row.group(0)
    assert f'data-id="{hospital}"' not in shown.text  # a terminal is not a dealer


def test_the_examples_are_the_formulas_the_tests_build() -> None:
    assert normalize(EXAMPLES_BY_KEY["sell_through_match"].text) == normalize(MATCH)
    assert normalize(EXAMPLES_BY_KEY["inventory_turnover"].text) == normalize(TURNOVER_DAYS)
    assert normalize(EXAMPLES_BY_KEY["dealer_health"].text) == normalize(DEALER_HEALTH)


def test_every_function_has_its_signature_and_both_descriptions() -> None:
    assert set(formula_vocabulary.FUNCTION_DOCS) == set(FUNCTIONS)
    assert all(doc.zh and doc.en for doc in formula_vocabulary.FUNCTION_DOCS.values())


def test_asking_for_the_field_files_a_change_request(client: TestClient, db: Database, tenant: Tenant) -> None:
    vp = browser(client, db, tenant["sales_vp"])
    token = csrf_of(vp.get("/settings/formulas").text)

    asked = vp.post(
        "/settings/formulas/request",
        data={
            "csrf": token,
            "record_type": "account",
            "expression": MATCH,
            "name": "sell_through_match",
            "label_zh": "终端动销匹配度",
            "label_en": "Sell-through match",
            "reason": "渠道健康",
        },
        follow_redirects=False,
    )

    assert asked.status_code == 303
    assert asked.headers["location"] == "/settings/changes"
    with db.reading(tenant["sales_vp"].actor) as session:
        found = changerequests.list_requests(session, tenant["sales_vp"].actor, limit=10)
        bodies = [changerequests.body(session, item) for item in found]
    mine = [b for b in bodies if b["payload"].get("name") == "sell_through_match"]
    assert len(mine) == 1
    assert mine[0]["status"] == "pending"
    assert mine[0]["payload"]["formula"] == MATCH
    assert mine[0]["payload"]["field_type"] == "formula"

    bad = vp.post(
        "/settings/formulas/request",
        data={
            "csrf": token,
            "record_type": "account",
            "expression": "1 +",
            "name": "broken",
            "label_zh": "坏",
            "label_en": "Bad",
        },
    )
    assert bad.status_code == 422
    assert "公式提前结束了" in bad.text


def test_every_post_needs_the_csrf_token(client: TestClient, db: Database, tenant: Tenant) -> None:
    vp = browser(client, db, tenant["sales_vp"], locale="en")
    vp.get("/settings/formulas")

    previewed = vp.post("/settings/formulas/preview", data={"record_type": "account", "expression": "1"})
    asked = vp.post(
        "/settings/formulas/request",
        data={
            "csrf": "forged",
            "record_type": "account",
            "expression": "1",
            "name": "x",
            "label_zh": "x",
            "label_en": "x",
        },
    )

    assert previewed.status_code == 400
    assert asked.status_code == 400
    with db.reading(tenant["sales_vp"].actor) as session:
        found = changerequests.list_requests(session, tenant["sales_vp"].actor, limit=10)
        assert not [item for item in found if changerequests.body(session, item)["payload"].get("name") == "x"]


def test_the_vocabulary_offers_custom_fields_only_to_those_who_may_read_them(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    from tests.governance.test_formulas_custom import define

    define(db, tenant, "account", "potential", "number")
    define(db, tenant, "account", "secret_rate", "number", visible_to=["sales_vp"])

    def fields(member: str) -> set[str]:
        body = client.get("/api/v1/formulas/vocabulary/accounts", headers=tenant[member].headers).json()
        return {f["name"] for f in body["fields"]}

    assert {"custom.potential", "custom.secret_rate"} <= fields("sales_vp")
    assert "custom.potential" in fields("rep")
    assert "custom.secret_rate" not in fields("rep")
