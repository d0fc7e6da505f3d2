"""Quotes and orders carry priced lines; their totals are computed, never typed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import utcnow
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account, new_product


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["manager"])


@pytest.fixture
def catalogue(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    admin = Api(client, tenant["admin"])
    return {"scanner": new_product(admin, list_price="1250000.00"), "probe": new_product(admin, list_price="8800.50")}


def test_a_quote_prices_its_lines_with_discounts(api: Api, catalogue: dict[str, Any]) -> None:
    account = new_account(api)
    lines = [
        {"product_id": catalogue["scanner"]["id"], "quantity": "1", "discount_percent": "12.5"},
        {"product_id": catalogue["probe"]["id"], "quantity": "3"},
        {"description": "安装调试", "quantity": "1", "unit_price": "20000"},
    ]

    quote = api.create("quotes", {"account_id": account["id"], "lines": lines, "discount_amount": "1401.50"})

    assert [(line["position"], line["unit_price"], line["amount"]) for line in quote["lines"]] == [
        (1, "1250000.00", "1093750.00"),
        (2, "8800.50", "26401.50"),
        (3, "20000.00", "20000.00"),
    ]
    assert (quote["subtotal"], quote["discount_amount"], quote["total"]) == ("1140151.50", "1401.50", "1138750.00")
    assert quote["number"] == f"Q-{utcnow().year}-00001"
    assert quote["status"] == "draft"


def test_new_lines_replace_the_old_with_one_version_and_the_totals_follow(api: Api, catalogue: dict[str, Any]) -> None:
    account = new_account(api)
    quote = api.create(
        "quotes", {"account_id": account["id"], "lines": [{"product_id": catalogue["probe"]["id"], "quantity": "1"}]}
    )

    response = api.patch(
        "quotes",
        quote["id"],
        {"lines": [{"product_id": catalogue["probe"]["id"], "quantity": "10"}], "notes": "加量"},
        version=1,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["version"], body["subtotal"], body["total"], body["notes"]) == (2, "88005.00", "88005.00", "加量")
    assert [line["quantity"] for line in body["lines"]] == ["10.000"]
    assert api.read("quotes", quote["id"]) == body
    history = api.request("GET", f"/quotes/{quote['id']}/history").json()["items"]
    assert [entry["action"] for entry in history] == ["quote.lines_replaced", "quote.updated", "quote.created"]
    assert history[1]["changes"]["total"] == ["8800.50", "88005.00"]


def test_a_discount_larger_than_the_subtotal_is_refused(api: Api, catalogue: dict[str, Any]) -> None:
    account = new_account(api)
    lines = [{"product_id": catalogue["probe"]["id"], "quantity": "1"}]

    response = api.request(
        "POST", "/quotes", json={"account_id": account["id"], "lines": lines, "discount_amount": "9000"}
    )

    assert_problem(response, 422, field="discount_amount")


def test_an_order_totals_its_net_lines_and_numbers_itself(api: Api, catalogue: dict[str, Any]) -> None:
    account = new_account(api)
    lines = [
        {"product_id": catalogue["probe"]["id"], "quantity": "2"},
        {"description": "培训", "quantity": "1", "unit_price": "500"},
    ]

    first = api.create("orders", {"account_id": account["id"], "lines": lines})
    second = api.create("orders", {"account_id": account["id"], "lines": lines[1:]})
    taken = api.request(
        "POST", "/orders", json={"account_id": account["id"], "number": first["number"], "lines": lines}
    )

    assert (first["total"], first["status"], first["number"]) == ("18101.00", "confirmed", f"SO-{utcnow().year}-00001")
    assert second["number"] == f"SO-{utcnow().year}-00002"
    assert_problem(taken, 409, field="number", code="duplicate")
    replaced = api.patch("orders", first["id"], {"lines": lines[1:]}, version=1)
    assert (replaced.json()["total"], replaced.json()["version"]) == ("500.00", 2)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"product_id": None, "quantity": "1", "unit_price": "10"}, "lines.0.description"),
        ({"product_id": 987654, "quantity": "1"}, "lines.0.product_id"),
        ({"description": "无价", "quantity": "1"}, "lines.0.unit_price"),
        (
            {"description": "打折", "quantity": "1", "unit_price": "10", "discount_percent": "5"},
            "lines.0.discount_percent",
        ),
        ({"description": "负数", "quantity": "-1", "unit_price": "10"}, "lines.0.quantity"),
    ],
)
def test_a_bad_order_line_is_named_and_nothing_is_stored(api: Api, line: dict[str, Any], field: str) -> None:
    account = new_account(api)

    response = api.request("POST", "/orders", json={"account_id": account["id"], "lines": [line]})

    assert_problem(response, 422, field=field)
    assert api.list_ids("orders") == []


def test_an_order_needs_lines(api: Api) -> None:
    account = new_account(api)

    assert_problem(api.request("POST", "/orders", json={"account_id": account["id"], "lines": []}), 422, field="lines")


def test_another_organization_s_product_cannot_be_sold(api: Api, client: TestClient, other_tenant: Tenant) -> None:
    foreign = new_product(Api(client, other_tenant["admin"]))
    account = new_account(api)

    response = api.request(
        "POST", "/orders", json={"account_id": account["id"], "lines": [{"product_id": foreign["id"], "quantity": "1"}]}
    )

    assert_problem(response, 422, field="lines.0.product_id", code="not_found")


def test_a_product_priced_in_another_currency_is_refused(api: Api, client: TestClient, tenant: Tenant) -> None:
    admin = Api(client, tenant["admin"])
    line = admin.create("product_lines", {"name": "进口设备", "code": "L-USD"})
    dollars = admin.create(
        "products",
        {"name": "MRI", "code": "P-USD", "product_line_id": line["id"], "list_price": "900", "currency": "USD"},
    )
    account = new_account(api)
    lines = [{"product_id": dollars["id"], "quantity": "1"}]

    order = api.request("POST", "/orders", json={"account_id": account["id"], "currency": "CNY", "lines": lines})
    quote = api.request("POST", "/quotes", json={"account_id": account["id"], "lines": lines})
    in_dollars = api.create("orders", {"account_id": account["id"], "currency": "USD", "lines": lines})
    switched = api.patch("orders", in_dollars["id"], {"currency": "EUR"})

    assert_problem(order, 422, field="lines.0.product_id", code="currency_mismatch")
    assert_problem(quote, 422, field="lines.0.product_id", code="currency_mismatch")
    assert_problem(switched, 422, field="currency", code="currency_mismatch")
    assert api.read("orders", in_dollars["id"])["currency"] == "USD"


def test_the_creation_audit_entry_names_the_lines(
    api: Api, catalogue: dict[str, Any], client: TestClient, tenant: Tenant
) -> None:
    account = new_account(api)
    order = api.create(
        "orders", {"account_id": account["id"], "lines": [{"product_id": catalogue["probe"]["id"], "quantity": "2"}]}
    )

    entries = (
        Api(client, tenant["sales_vp"])
        .request("GET", "/audit", params={"subject_type": "order", "subject_id": order["id"]})
        .json()["items"]
    )

    created = next(entry for entry in entries if entry["action"] == "order.created")
    (line,) = created["changes"]["lines"][1]
    assert (line["product_id"], line["quantity"], line["amount"]) == (catalogue["probe"]["id"], "2.000", "17601.00")
