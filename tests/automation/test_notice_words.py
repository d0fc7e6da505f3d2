"""A rule's notice and its decision record say a picklist's value in words, in Chinese and in
English (商务谈判 / Negotiation, as the record pages do), never its code inside the sentence; a
number keeps its formatting and a masked value stays masked."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag


def _rule(db: Database, tenant: Tenant, conditions: list[dict[str, Any]]) -> str:
    vp = tenant["sales_vp"].actor
    name = f"谈判中的商机有新跟进 {tag()}"
    definition = {
        "trigger": {"kind": "event", "event": "activity_logged"},
        "conditions": conditions,
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }
    with db.unit_of_work(vp) as session:
        automation.create_rule(session, vp, name=name, definition=definition, enabled=True)
    return name


def _fire(client: TestClient, db: Database, tenant: Tenant, **account: Any) -> None:
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])
    customer = vp.create(
        "accounts", {"name": f"协和医院 {tag()}", "owner_id": tenant["rep"].user_id, "tier": "A", **account}
    )
    deal = rep.create(
        "opportunities",
        {"name": "CT 项目", "account_id": customer["id"], "stage": "negotiation", "expected_close_date": "2026-12-20"},
    )
    rep.create(
        "activities",
        {"kind": "call", "account_id": customer["id"], "opportunity_id": deal["id"], "direction": "outbound"},
    )
    engine.drain(db)


def _notice(client: TestClient, tenant: Tenant, rule: str) -> dict[str, str]:
    items = Api(client, tenant["rep"]).request("GET", "/notifications").json()["items"]
    found = [item["body"] for item in items if rule in item["body"]["zh_CN"]]
    assert len(found) == 1, items
    body: dict[str, str] = found[0]
    return body


def test_a_notice_says_the_stage_and_tier_in_words(client: TestClient, db: Database, tenant: Tenant) -> None:
    rule = _rule(
        db,
        tenant,
        [
            {"field_or_metric": "opportunity.stage", "op": "==", "value": "negotiation", "unit": None},
            {"field_or_metric": "account.tier", "op": "in", "value": ["A", "B"], "unit": None},
        ],
    )
    _fire(client, db, tenant)

    body = _notice(client, tenant, rule)
    assert "商机阶段为商务谈判（看到的值：商务谈判）" in body["zh_CN"], body
    assert "客户等级属于A 类、B 类（看到的值：A 类）" in body["zh_CN"], body
    assert "negotiation" not in body["zh_CN"].lower()
    assert "opportunity stage is Negotiation (value seen: Negotiation)" in body["en"], body
    assert "account tier is one of Tier A, Tier B (value seen: Tier A)" in body["en"], body

    # the decision record reads the same, in the language the request asks for
    vp = Api(client, tenant["sales_vp"])
    decisions = vp.request("GET", "/decisions", headers={"Accept-Language": "zh-CN"})
    assert decisions.status_code == 200, decisions.text
    chinese = next(d["why"] for d in decisions.json()["items"] if rule in d["why"])
    assert "商机阶段为商务谈判（看到的值：商务谈判）" in chinese
    english = vp.request("GET", "/decisions", headers={"Accept-Language": "en"}).json()["items"]
    assert any("opportunity stage is Negotiation (value seen: Negotiation)" in d["why"] for d in english), english


def test_a_masked_value_stays_masked_beside_a_value_in_words(client: TestClient, db: Database, tenant: Tenant) -> None:
    rule = _rule(
        db,
        tenant,
        [
            {"field_or_metric": "account.credit_line", "op": ">", "value": 0, "unit": None},
            {"field_or_metric": "opportunity.stage", "op": "==", "value": "negotiation", "unit": None},
        ],
    )
    _fire(client, db, tenant, credit_line="18700000.00")

    body = _notice(client, tenant, rule)  # the rep may not read the credit line
    assert "客户信用额度超过0（看到的值：•••）" in body["zh_CN"], body
    assert "account credit line over 0 (value seen: •••)" in body["en"], body
    assert "18700000" not in body["zh_CN"] + body["en"]
    assert "商机阶段为商务谈判（看到的值：商务谈判）" in body["zh_CN"], body
    assert "opportunity stage is Negotiation (value seen: Negotiation)" in body["en"], body
