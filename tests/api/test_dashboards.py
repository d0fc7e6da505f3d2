"""Performance figures, the records behind funnel steps, alert thresholds and metric lineage, on a
handful of crafted deals whose every figure is worked out by hand.

Deals (amounts in yuan; Q1 = Jan–Mar 2026, Q2 = Apr–Jun):

=====  ======  =========  ========  ========  ==========  ========
deal   owner   customer   region    amount    closed      outcome
=====  ======  =========  ========  ========  ==========  ========
one    rep     north      tenant's  100,000   2026-02-10  won (margin 20 %)
two    rep     north      tenant's   50,000   2026-02-20  lost
three  rep     north      tenant's   30,000   2026-04-05  won (margin 30 %)
four   rep2    south      none      200,000   2026-05-01  won
five   rep2    south      none       80,000   —           open
=====  ======  =========  ========  ========  ==========  ========
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm.alerts import service as alerts
from closeloop.crm.metrics import Metric, Registry, registry
from closeloop.db.session import Database
from closeloop.org import notifications
from tests.factories import Tenant
from tests.samples import Api, assert_problem


def _close(api: Api, opportunity: dict[str, Any], stage: str, day: date) -> None:
    body: dict[str, Any] = {"stage": stage}
    if stage == "lost":
        body["lost_reason"] = "price"
    with frozen_at(datetime(day.year, day.month, day.day, 10, tzinfo=UTC)):
        moved = api.request("POST", f"/opportunities/{opportunity['id']}/stage", json=body)
    assert moved.status_code == 200, moved.text


@pytest.fixture
def deals(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    vp = Api(client, tenant["sales_vp"])
    rep, rep2 = tenant["rep"].user_id, tenant["rep2"].user_id
    north = vp.create("accounts", {"name": "北方医院", "region_id": tenant.region_id, "owner_id": rep})
    south = vp.create("accounts", {"name": "南方诊所", "owner_id": rep2})

    def deal(name: str, owner: int, account: dict[str, Any], amount: str, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "owner_id": owner, "account_id": account["id"], "amount": amount, **extra}
        return vp.create("opportunities", body)

    one = deal("一号", rep, north, "100000.00", margin="20.00")
    two = deal("二号", rep, north, "50000.00")
    three = deal("三号", rep, north, "30000.00", margin="30.00")
    four = deal("四号", rep2, south, "200000.00")
    deal("五号", rep2, south, "80000.00")
    _close(vp, one, "won", date(2026, 2, 10))
    _close(vp, two, "lost", date(2026, 2, 20))
    _close(vp, three, "won", date(2026, 4, 5))
    _close(vp, four, "won", date(2026, 5, 1))
    return {"north": north, "south": south}


def performance(api: Api, **params: Any) -> dict[str, Any]:
    response = api.request("GET", "/performance", params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def bars(found: dict[str, Any], *metrics: str) -> list[tuple[Any, ...]]:
    return [(item["label"], *(item[m] for m in metrics)) for item in found["items"]]


def test_totals_and_quarters_match_the_hand_computed_figures(
    client: TestClient, tenant: Tenant, deals: dict[str, Any]
) -> None:
    found = performance(Api(client, tenant["sales_vp"]), by="quarter")

    assert found["totals"] == {
        "key": None,
        "label": "",
        "revenue": "330000.00",
        "win_rate": 0.75,
        "won_deals": 3,
        "closed_deals": 4,
        "avg_margin": "25.00",
    }
    assert bars(found, "revenue", "win_rate", "won_deals", "closed_deals") == [
        ("2026-Q1", "100000.00", 0.5, 1, 2),
        ("2026-Q2", "230000.00", 1.0, 2, 2),
    ]


def test_drilling_fixes_one_dimension_after_another(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    vp = Api(client, tenant["sales_vp"])

    regions = performance(vp, by="region")
    in_region = performance(vp, region=str(tenant.region_id), by="owner")
    rep_quarters = performance(vp, region=str(tenant.region_id), owner=str(tenant["rep"].user_id), by="quarter")
    no_region = performance(vp, region="none", by="account")

    assert [(i["key"], i["revenue"], i["win_rate"]) for i in regions["items"]] == [
        ("none", "200000.00", 1.0),
        (str(tenant.region_id), "130000.00", 0.6667),
    ]
    assert [(i["key"], i["revenue"]) for i in in_region["items"]] == [(str(tenant["rep"].user_id), "130000.00")]
    assert [c["dimension"] for c in rep_quarters["breadcrumbs"]] == ["region", "owner"]
    assert bars(rep_quarters, "revenue", "win_rate") == [("2026-Q1", "100000.00", 0.5), ("2026-Q2", "30000.00", 1.0)]
    assert bars(no_region, "revenue") == [("南方诊所", "200000.00")]


def test_the_closing_period_bounds_the_deals(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    found = performance(Api(client, tenant["sales_vp"]), start="2026-04-01", end="2026-04-30")

    assert (found["totals"]["revenue"], found["totals"]["closed_deals"]) == ("30000.00", 1)


def test_a_rep_sees_only_their_deals_and_no_margin(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    rep = Api(client, tenant["rep"])

    found = performance(rep, by="owner")

    assert found["metrics"] == ["revenue", "win_rate", "won_deals", "closed_deals"]
    assert "avg_margin" not in found["totals"]
    assert (found["totals"]["revenue"], found["totals"]["win_rate"]) == ("130000.00", 0.6667)
    assert [item["key"] for item in found["items"]] == [str(tenant["rep"].user_id)]
    # rep2's customer is not even named to the rep
    assert "南方诊所" not in rep.request("GET", "/performance", params={"by": "account"}).text


def test_bad_drill_parameters_are_named(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    vp = Api(client, tenant["sales_vp"])

    assert_problem(vp.request("GET", "/performance", params={"quarter": "2026-Q5"}), 422, field="quarter")
    assert_problem(vp.request("GET", "/performance", params={"region": "abc"}), 422, field="region")
    assert_problem(vp.request("GET", "/performance", params={"region": "1", "by": "region"}), 422, field="by")


def test_the_records_behind_a_funnel_step(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])

    won = vp.request("GET", "/funnel/won/records").json()
    first = vp.request("GET", "/funnel/opportunity/records", params={"limit": 2}).json()
    second = vp.request(
        "GET", "/funnel/opportunity/records", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    mine = rep.request("GET", "/funnel/won/records").json()

    assert won["count"] == 3
    assert sorted(i["name"] for i in won["items"]) == ["一号", "三号", "四号"]
    assert first["count"] == 5
    assert len(first["items"]) == 2
    assert len(second["items"]) == 2
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert sorted(i["name"] for i in mine["items"]) == ["一号", "三号"]
    assert all("margin" not in item for item in mine["items"])
    assert_problem(vp.request("GET", "/funnel/nowhere/records"), 422, field="step")


# --- alert thresholds ---------------------------------------------------------------------------


def _notices(db: Database, member: Any) -> list[notifications.Notification]:
    with db.reading(member.actor) as session:
        return notifications.page(session, member.actor)[0]


def test_a_breach_notifies_its_owner_once_while_unread(
    client: TestClient, db: Database, tenant: Tenant, deals: dict[str, Any]
) -> None:
    rep = Api(client, tenant["rep"])
    created = rep.request(
        "POST",
        "/alert-thresholds",
        json={"metric": "win_rate", "scope": {"region": str(tenant.region_id)}, "direction": "below", "value": "0.7"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["text"]["en"].startswith("Win rate of region ")
    assert "falls below 70.0%" in created.json()["text"]["en"]

    first = alerts.check_all(db)
    again = alerts.check_all(db)

    assert (first.breached, again.breached) >= (1, 1)
    found = [n for n in _notices(db, tenant["rep"]) if n.source_key == f"threshold:{created.json()['id']}"]
    assert len(found) == 1, "a persisting breach is announced once while unread"
    assert found[0].body_en == "Now 66.7%"
    assert found[0].link == f"/dashboard?region={tenant.region_id}"
    listed = rep.request("GET", "/alert-thresholds").json()["items"]
    assert listed[0]["breached"] is True
    assert listed[0]["last_value"] == "0.6667"

    with db.unit_of_work(tenant["rep"].actor) as session:
        notifications.mark_all_read(session, tenant["rep"].actor)
    alerts.check_all(db)
    found = [n for n in _notices(db, tenant["rep"]) if n.source_key == f"threshold:{created.json()['id']}"]
    assert len(found) == 2, "once read, a breach that persists is announced again"


def test_a_threshold_not_crossed_stays_silent(
    client: TestClient, db: Database, tenant: Tenant, deals: dict[str, Any]
) -> None:
    rep = Api(client, tenant["rep"])
    created = rep.request(
        "POST", "/alert-thresholds", json={"metric": "revenue", "direction": "below", "value": "100000"}
    )
    assert created.status_code == 201, created.text

    alerts.check_all(db)

    assert [n for n in _notices(db, tenant["rep"]) if n.source_key == f"threshold:{created.json()['id']}"] == []
    assert rep.request("GET", "/alert-thresholds").json()["items"][0]["last_value"] == "130000.0000"


def test_the_check_sees_only_what_the_owner_sees(
    client: TestClient, db: Database, tenant: Tenant, deals: dict[str, Any]
) -> None:
    """rep2's 200,000 would lift the organization's revenue above the line; the rep's own 130,000 does not."""
    rep = Api(client, tenant["rep"])
    created = rep.request(
        "POST", "/alert-thresholds", json={"metric": "revenue", "direction": "above", "value": "150000"}
    )

    alerts.check_all(db)

    assert rep.request("GET", "/alert-thresholds").json()["items"][0]["breached"] is False
    assert created.status_code == 201


def test_another_persons_thresholds_are_invisible(client: TestClient, tenant: Tenant, deals: dict[str, Any]) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    created = rep.request("POST", "/alert-thresholds", json={"metric": "won_deals", "direction": "above", "value": "5"})
    threshold_id = created.json()["id"]

    assert manager.request("GET", "/alert-thresholds").json()["items"] == []
    assert_problem(manager.request("DELETE", f"/alert-thresholds/{threshold_id}"), 404)
    assert rep.request("DELETE", f"/alert-thresholds/{threshold_id}").status_code == 204
    assert rep.request("GET", "/alert-thresholds").json()["items"] == []


def test_a_threshold_is_refused_on_what_the_person_cannot_read(
    client: TestClient, tenant: Tenant, deals: dict[str, Any]
) -> None:
    rep = Api(client, tenant["rep"])

    masked = rep.request(
        "POST", "/alert-thresholds", json={"metric": "avg_margin", "direction": "below", "value": "20"}
    )
    unknown_scope = rep.request(
        "POST",
        "/alert-thresholds",
        json={"metric": "revenue", "scope": {"account": str(deals["south"]["id"])}, "direction": "below", "value": "1"},
    )
    rate = rep.request("POST", "/alert-thresholds", json={"metric": "win_rate", "direction": "below", "value": "25"})

    assert_problem(masked, 422, field="metric")
    assert_problem(unknown_scope, 422, field="scope.account")
    assert_problem(rate, 422, field="value")


# --- lineage ------------------------------------------------------------------------------------


def test_lineage_of_a_dashboard_lists_exactly_its_sources(client: TestClient, tenant: Tenant) -> None:
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])

    found = vp.request("GET", "/lineage/dashboard/performance").json()
    for_rep = rep.request("GET", "/lineage/dashboard/performance").json()

    expected = {
        ("account", "region_id"),
        ("opportunity", "account_id"),
        ("opportunity", "amount"),
        ("opportunity", "closed_at"),
        ("opportunity", "margin"),
        ("opportunity", "owner_id"),
        ("opportunity", "product_id"),
        ("opportunity", "stage"),
        ("product", "product_line_id"),
    }
    assert {(s["record_type"], s["field"]) for s in found["upstream"]} == expected
    assert {(s["record_type"], s["field"]) for s in for_rep["upstream"]} == expected - {("opportunity", "margin")}
    assert [m["key"] for m in for_rep["metrics"]] == ["revenue", "win_rate", "won_deals", "closed_deals"]
    assert found["owner"] == {"role": "sales_vp", "accountable": None}


def test_lineage_of_a_metric_and_the_fields_downstream(client: TestClient, tenant: Tenant) -> None:
    vp, rep = Api(client, tenant["sales_vp"]), Api(client, tenant["rep"])

    win_rate = vp.request("GET", "/lineage/metric/win_rate").json()
    stage = vp.request("GET", "/lineage/opportunity/stage").json()

    assert {(s["record_type"], s["field"]) for s in win_rate["upstream"]} == {
        ("opportunity", "stage"),
        ("opportunity", "closed_at"),
    }
    assert win_rate["refresh"] == "on_read"
    assert win_rate["owner"]["role"] == "sales_vp"
    assert "÷" in win_rate["transformation"]["en"]
    assert [d["key"] for d in win_rate["downstream"]] == ["performance"]
    assert {"win_rate", "revenue", "funnel.won"} <= {m["key"] for m in stage["metrics"]}
    assert {d["key"] for d in stage["dashboards"]} == {"performance", "funnel"}
    assert_problem(rep.request("GET", "/lineage/metric/avg_margin"), 404)
    assert_problem(vp.request("GET", "/lineage/metric/nothing"), 404)


def test_a_metric_without_complete_lineage_is_not_published() -> None:
    published = Registry()
    complete = registry().metric("revenue")

    def without(**changes: Any) -> Metric:
        fields = {name: getattr(complete, name) for name in complete.__dataclass_fields__}
        return Metric(**{**fields, **changes})

    for broken, missing in (
        (without(owner_role=None), "owner"),
        (without(statements=lambda actor: []), "sources"),
        (without(transformation_en=" "), "transformation"),
        (without(refresh="sometimes"), "refresh"),
    ):
        with pytest.raises(Exception, match=missing) as refused:
            published.publish(broken)
        assert getattr(refused.value, "code", None) == "incomplete_lineage"
    assert published.metrics == {}
    assert published.publish(complete) is complete
