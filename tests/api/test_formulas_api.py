"""The formula API (GOV-2): check a formula as it is typed, preview it on records you can see."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account


def check(api: Api, record_type: str, expression: str) -> Any:
    return api.request("POST", "/formulas/check", json={"record_type": record_type, "expression": expression})


def preview(api: Api, record_type: str, expression: str, **extra: Any) -> Any:
    body = {"record_type": record_type, "expression": expression, **extra}
    return api.request("POST", "/formulas/preview", json=body)


def test_a_good_formula_is_described(client: TestClient, tenant: Tenant) -> None:
    response = check(
        Api(client, tenant["rep"]),
        "account",
        'if(tier="A",round(SUM(orders.amount where days_ago<=90)/3,2),0)',
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "type": "number",
        "normalized": 'IF(tier = "A", ROUND(SUM(orders.amount WHERE days_ago <= 90) / 3, 2), 0)',
        "inputs": ["account.tier", "order.ordered_at", "order.total"],
        "sources": ["account", "order"],
        "masked_inputs": [],
    }


def test_a_bad_formula_is_a_problem_that_points_at_the_place(client: TestClient, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])

    problem = assert_problem(
        check(api, "account", '  employees + "人"'), 422, field="expression", code="invalid_formula"
    )
    assert problem["errors"][0]["message"] == "cannot add text to number; use & to join texts (at line 1, column 13)"
    assert (problem["position"], problem["line"], problem["column"]) == (12, 1, 13)

    problem = assert_problem(check(api, "account", "employes\n * 2"), 422, field="expression")
    assert "unknown field 'employes'; did you mean 'employees'?" in problem["errors"][0]["message"]
    assert (problem["line"], problem["column"]) == (1, 1)

    problem = assert_problem(check(api, "account", "SUM(orders.amount\n  WHERE days_ago <=)"), 422, field="expression")
    assert (problem["line"], problem["column"]) == (2, 20)


def test_the_record_type_and_the_sizes_are_checked(client: TestClient, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    assert_problem(check(api, "spaceship", "1"), 422, field="record_type")
    assert_problem(check(api, "account", ""), 422, field="expression")
    assert_problem(check(api, "account", "1" * 4001), 422, field="expression")
    assert_problem(preview(api, "account", "1", limit=21), 422, field="limit")
    assert_problem(preview(api, "account", "1", ids=list(range(1, 22))), 422, field="ids")


def test_a_preview_computes_on_the_records_you_can_see(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    vp = Api(client, tenant["sales_vp"])
    rep = Api(client, tenant["rep"])
    mine = new_account(vp, tenant["rep"].user_id, employees=120, tier="A")
    theirs = new_account(vp, tenant["rep2"].user_id, employees=80)
    foreign = new_account(Api(client, other_tenant["admin"]), employees=5)

    response = preview(rep, "account", "employees / 10", ids=[mine["id"], theirs["id"]])
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [{"id": mine["id"], "value": 12.0}]

    listed = preview(rep, "account", 'IF(tier = "A", "重点客户", "普通")', limit=20).json()["items"]
    assert {"id": mine["id"], "value": "重点客户"} in listed
    assert all(item["id"] not in (theirs["id"], foreign["id"]) for item in listed)

    manager = preview(
        Api(client, tenant["manager"]), "account", "employees", ids=[mine["id"], theirs["id"], foreign["id"]]
    )
    assert manager.json()["items"] == [{"id": mine["id"], "value": 120.0}, {"id": theirs["id"], "value": 80.0}]


def test_a_formula_that_reads_a_masked_field_is_refused_to_a_rep_and_computed_for_the_cfo(
    client: TestClient, tenant: Tenant
) -> None:
    vp = Api(client, tenant["sales_vp"])
    account = new_account(vp, tenant["rep"].user_id, credit_line="800000.00")
    opportunity = vp.create(
        "opportunities",
        {
            "name": "CT 采购",
            "account_id": account["id"],
            "amount": "500000.00",
            "margin": "32.50",
            "owner_id": tenant["rep"].user_id,
        },
    )
    expression = "ROUND(amount * margin / 100, 2)"

    problem = assert_problem(
        preview(Api(client, tenant["rep"]), "opportunity", expression, ids=[opportunity["id"]]),
        403,
        field="expression",
        code="forbidden",
    )
    assert problem["masked_inputs"] == ["opportunity.margin"]
    assert "opportunity.margin" in problem["detail"]
    assert "162500" not in str(problem)

    described = check(Api(client, tenant["rep"]), "opportunity", expression).json()
    assert described["masked_inputs"] == ["opportunity.margin"]

    cfo = preview(Api(client, tenant["cfo"]), "opportunity", expression, ids=[opportunity["id"]])
    assert cfo.status_code == 200, cfo.text
    assert cfo.json()["items"] == [{"id": opportunity["id"], "value": 162500.0}]

    aggregated = preview(Api(client, tenant["rep"]), "account", "AVG(opportunities.margin) > 30", ids=[account["id"]])
    assert_problem(aggregated, 403, field="expression")
    assert preview(Api(client, tenant["admin"]), "account", "credit_line > 0").status_code == 403
    assert preview(Api(client, tenant["sales_vp"]), "account", "credit_line > 0", ids=[account["id"]]).json()[
        "items"
    ] == [{"id": account["id"], "value": True}]


def test_dates_come_back_as_iso_text(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    account = new_account(rep, employees=3)
    response = preview(rep, "account", 'DATE("2026-02-28")', ids=[account["id"]])
    assert response.json()["items"] == [{"id": account["id"], "value": "2026-02-28"}]
    assert response.json()["type"] == "date"


def test_formulas_need_a_signed_in_caller(client: TestClient) -> None:
    response = client.post("/api/v1/formulas/check", json={"record_type": "account", "expression": "1"})
    assert_problem(response, 401)
