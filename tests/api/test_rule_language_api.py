"""``POST /api/v1/rules/parse`` (AUTO-2): the structured rule and its read-back, or a 422 problem
naming the span not understood; only rule designers (managers and above) may call it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.samples import Api, assert_problem


def test_a_manager_parses_a_rule(client: TestClient, tenant: Tenant) -> None:
    response = Api(client, tenant["manager"]).request(
        "POST", "/rules/parse", json={"text": "Any order over $50k needs approval from the finance director."}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rule": {
            "trigger": {"kind": "event", "event": "order_placed"},
            "conditions": [{"field_or_metric": "order.amount", "op": ">", "value": 50000, "unit": "USD"}],
            "actions": [{"type": "require_approval", "target": "role:finance_director", "params": {}}],
        },
        "readback": "When an order is placed, if the order amount is more than 50,000 USD: "
        "require approval from the finance director.",
        "lang": "en",
    }
    zh = Api(client, tenant["manager"]).request(
        "POST",
        "/rules/parse",
        json={"text": "Any order over $50k needs approval from the finance director.", "lang": "zh"},
    )
    assert zh.json()["readback"] == "下单时，如果订单金额超过50,000美元：需要财务总监审批。"


def test_a_sentence_not_understood_is_a_422_naming_the_span(client: TestClient, tenant: Tenant) -> None:
    api = Api(client, tenant["director"])
    problem = assert_problem(
        api.request("POST", "/rules/parse", json={"text": "超过一段时间没跟进的商机，提醒一下销售。"}),
        422,
        field="text",
        code="not_understood",
    )
    assert problem["detail"].startswith("Not understood at characters 2–6 ('一段时间')")
    assert (problem["position"], problem["end"], problem["lang"]) == (2, 6, "zh")
    assert problem["problems"][0]["fragment"] == "一段时间"
    assert problem["problems"][0]["message_zh"].startswith("表述不明确")
    assert_problem(api.request("POST", "/rules/parse", json={"text": ""}), 422, field="text")
    assert_problem(api.request("POST", "/rules/parse", json={"text": "x", "lang": "fr"}), 422, field="lang")


def test_a_rep_may_not_design_rules(client: TestClient, tenant: Tenant) -> None:
    response = Api(client, tenant["rep"]).request("POST", "/rules/parse", json={"text": "通知主管"})
    assert_problem(response, 403)
