"""Formula fields on the dashboard and in rules (GOV-2): a number formula of opportunities is a
measure of the performance dashboard (its sum over each bar's deals), any other formula a dimension;
the dashboard's lineage follows each formula to its inputs, and a formula's inputs name the
dashboard downstream (and a change request's impact lists it, with the rules reading the
formula); a formula masked for a role is neither shown nor in its lineage; a rule's
condition on a formula field sees its computed value. The deals are those of test_dashboards.py:
closed deals of 100,000 (won), 50,000 (lost), 30,000 (won) and 200,000 (won) yuan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from closeloop.automation import metrics as rule_metrics
from closeloop.automation import service as automation
from closeloop.crm import customfields
from closeloop.crm.customfields import DefinitionCreate
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.api.test_dashboards import deals, performance
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_board import signed_in, with_password
from tests.web.test_sign_in import ENGLISH

__all__ = ["deals"]


def define(db: Database, tenant: Tenant, name: str, field_type: str, **extra: Any) -> None:
    system = org_service.system_actor(tenant.organization_id)
    body = {"record_type": "opportunity", "name": name, "field_type": field_type, "label_zh": name, "label_en": name}
    with db.unit_of_work(system) as session:
        customfields.create_definition(session, system, DefinitionCreate.model_validate({**body, **extra}))


def formulas(db: Database, tenant: Tenant) -> None:
    define(db, tenant, "bonus", "number")
    define(db, tenant, "weighted", "formula", formula="amount / 1000 + COALESCE(custom.bonus, 0)")
    define(db, tenant, "size", "formula", formula='IF(amount >= 100000, "big", "small")')
    define(db, tenant, "margin_points", "formula", formula="margin * 10")  # margin: finance roles only


def test_formulas_are_measures_and_dimensions_of_the_dashboard(
    client: TestClient, db: Database, tenant: Tenant, deals: dict[str, Any]
) -> None:
    formulas(db, tenant)
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])

    totals = performance(vp)["totals"]
    by_size = performance(vp, by="custom.size")

    assert totals["custom.weighted"] == 380.0  # 100 + 50 + 30 + 200
    assert totals["custom.margin_points"] == 500.0  # (20 + 30) × 10: the lost and margin-less deals add nothing
    assert [(i["label"], i["revenue"], i["closed_deals"], i["custom.weighted"]) for i in by_size["items"]] == [
        ("big", "300000.00", 2, 300.0),
        ("small", "30000.00", 2, 80.0),
    ]
    assert "custom.margin_points" not in performance(rep)["totals"]  # masked for a rep, like margin

    lineage = vp.request("GET", "/lineage/dashboard/performance").json()
    upstream = {(s["record_type"], s["field"]) for s in lineage["upstream"]}
    assert {
        ("opportunity", "custom.weighted"),
        ("opportunity", "custom.size"),
        ("opportunity", "custom.bonus"),
    } <= upstream
    assert {f["field"] for f in lineage["formulas"]} == {"custom.weighted", "custom.size", "custom.margin_points"}
    for_rep = rep.request("GET", "/lineage/dashboard/performance").json()
    assert "custom.margin_points" not in {f["field"] for f in for_rep["formulas"]}
    bonus = vp.request("GET", "/lineage/opportunity/custom.bonus").json()
    assert [d["field"] for d in bonus["downstream"]] == ["custom.weighted"]
    assert [d["key"] for d in bonus["dashboards"]] == ["performance"]
    big_deal = {
        "trigger": {"kind": "event", "event": "opportunity_stage_changed"},
        "conditions": [{"field_or_metric": "opportunity.custom.weighted", "op": ">", "value": 200, "unit": None}],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        rule_id = automation.create_rule(session, manager, name="大单提醒", definition=big_deal, enabled=True).id
    fields = Api(client, tenant["admin"]).request("GET", "/custom-fields").json()["items"]
    bonus_id = next(f["id"] for f in fields if f["name"] == "bonus")
    retire = Api(client, tenant["admin"]).request("DELETE", f"/custom-fields/{bonus_id}")
    assert retire.status_code == 202, retire.text
    impact = retire.json()["impact"]  # what breaks if it goes: the formula, and the dashboard showing it
    assert ([d["field"] for d in impact["dependents"]], [d["key"] for d in impact["dashboards"]]) == (
        ["custom.weighted"],
        ["performance"],
    )
    assert impact["rules"] == [{"id": rule_id, "name": "大单提醒", "enabled": True}]  # reads the formula

    browser, _ = signed_in(client, with_password(db, tenant["sales_vp"]))
    page = browser.get("/dashboard?by=custom.size", headers=ENGLISH)
    assert page.status_code == 200, page.text
    assert '<th scope="col" class="num">weighted</th>' in page.text
    assert ">big</" in page.text


def test_a_rule_condition_on_a_formula_field_sees_its_value(
    db: Database, tenant: Tenant, deals: dict[str, Any]
) -> None:
    formulas(db, tenant)
    system = org_service.system_actor(tenant.organization_id)
    with db.reading(system) as session:
        deal = session.query(Opportunity).filter(Opportunity.name == "四号").one()
        deal.custom = {"bonus": 5}
        ctx = rule_metrics.Context(session, tenant.organization_id, "opportunity", deal, datetime.now(UTC))
        weighted = {"field_or_metric": "opportunity.custom.weighted", "op": ">", "value": 200, "unit": None}
        bonus = {"field_or_metric": "opportunity.custom.bonus", "op": "==", "value": 5, "unit": None}
        assert rule_metrics.read(ctx, bonus) == 5  # a stored field: as before
        assert rule_metrics.read(ctx, weighted) == 205.0  # computed in the database: 200 + the bonus
        assert rule_metrics.holds(weighted, rule_metrics.read(ctx, weighted))
        size = {"field_or_metric": "opportunity.custom.size", "op": "==", "value": "big", "unit": None}
        assert rule_metrics.holds(size, rule_metrics.read(ctx, size))
