"""A rule is no way round a field mask or the row scope: its author may test only fields they may
read and set only fields they may set; a backtest shows only the records its author may see; a
rule's notice or task shows a masked value to nobody whose role may not read it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.automation import engine, metrics
from closeloop.automation import service as automation
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.org.notifications import Notification
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

NOTIFY_OWNER = [{"type": "notify", "target": "owner", "params": {}}]


def _schedule(field: str, value: Any, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op = ">=" if isinstance(value, int) else "=="
    return {
        "trigger": {"kind": "schedule", "frequency": "daily"},
        "conditions": [{"field_or_metric": field, "op": op, "value": value, "unit": None}],
        "actions": actions or NOTIFY_OWNER,
    }


def test_a_rule_may_not_test_or_set_a_field_its_author_may_not_read(client: TestClient, tenant: Tenant) -> None:
    manager = Api(client, tenant["manager"])

    for path, definition in (
        ("/rules/backtest", {"definition": _schedule("account.credit_line", 0), "days": 1}),
        ("/rules", {"name": "授信", "definition": _schedule("account.credit_line", 0)}),
        ("/rules", {"name": "毛利", "definition": _schedule("opportunity.margin", 0)}),
    ):
        refused = assert_problem(
            manager.request("POST", path, json=definition), 422, field="conditions.0.field_or_metric"
        )
        assert "may not read" in refused["detail"]

    sets_credit = _schedule("account.tier", "A", [{"type": "set_field", "target": "account.credit_line",
                                                    "params": {"value": 1}}])  # fmt: skip
    assert_problem(manager.request("POST", "/rules", json={"name": "x", "definition": sets_credit}), 422,
                   field="actions.0.target")  # fmt: skip

    # the sales VP may read the credit line: the same rule is theirs to write
    vp = Api(client, tenant["sales_vp"])
    assert (
        vp.request(
            "POST", "/rules/backtest", json={"definition": _schedule("account.credit_line", 0), "days": 1}
        ).status_code
        == 200
    )


def test_a_backtest_shows_only_the_records_its_author_may_see(client: TestClient, tenant: Tenant) -> None:
    unique = tag()
    mine = Api(client, tenant["rep"]).create("accounts", {"name": f"团队客户 {unique}", "tier": "A"})
    outside = Api(client, tenant["director"]).create("accounts", {"name": f"总监客户 {unique}", "tier": "A"})
    manager = Api(client, tenant["manager"])

    answer = manager.request("POST", "/rules/backtest", json={"definition": _schedule("account.tier", "A"), "days": 1})

    assert answer.status_code == 200, answer.text
    seen = {item["record_id"] for item in answer.json()["records"]}
    assert mine["id"] in seen
    assert outside["id"] not in seen
    assert outside["id"] not in {d["record_id"] for d in answer.json()["decisions"]}


def test_a_rules_notice_shows_a_masked_value_to_nobody_who_may_not_read_it(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    vp, rep = tenant["sales_vp"].actor, tenant["rep"]
    definition = {
        "trigger": {"kind": "event", "event": "activity_logged"},
        "conditions": [{"field_or_metric": "account.credit_line", "op": ">", "value": 0, "unit": None}],
        "actions": [
            {"type": "notify", "target": "owner", "params": {}},
            {"type": "notify", "target": "role:sales_vp", "params": {}},
        ],
    }
    with db.unit_of_work(vp) as session:
        automation.create_rule(session, vp, name=f"授信客户有新跟进 {tag()}", definition=definition, enabled=True)
    account = Api(client, tenant["sales_vp"]).create(
        "accounts", {"name": f"授信医院 {tag()}", "owner_id": rep.user_id, "credit_line": "18700000.00"}
    )
    Api(client, rep).create("activities", {"kind": "call", "account_id": account["id"], "direction": "outbound"})
    engine.drain(db)

    with db.reading(None, system=True) as session:
        notices = {
            n.user_id: n
            for n in session.scalars(
                select(Notification).where(
                    tenant_clause(tenant.organization_id, Notification), Notification.kind == "automation.notice"
                )
            )
        }
    assert {rep.user_id, tenant["sales_vp"].user_id} <= set(notices)
    rep_text = (notices[rep.user_id].body_zh or "") + (notices[rep.user_id].body_en or "")
    assert rep_text.count("•••") == 2
    assert "1.87e+07" not in rep_text
    assert "18700000" not in rep_text
    vp_text = notices[tenant["sales_vp"].user_id].body_en or ""
    assert "•••" not in vp_text
    assert "1.87e+07" in vp_text or "18,700,000" in vp_text


def test_a_comparison_with_a_text_is_refused_when_saved_and_never_crashes_a_check(
    client: TestClient, tenant: Tenant
) -> None:
    manager = Api(client, tenant["manager"])
    definition = _schedule("account.tier", 0)
    definition["conditions"][0]["value"] = "A"

    assert_problem(manager.request("POST", "/rules/backtest", json={"definition": definition, "days": 1}), 422,
                   field="conditions.0.value")  # fmt: skip
    # a stored rule whose field holds text where it compares numbers: the condition does not hold
    assert not metrics.holds({"op": ">=", "value": 5}, "A")
