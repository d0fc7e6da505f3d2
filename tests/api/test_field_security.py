"""Field masks configured by the organization (GOV-3 complete): the matrix, changes signed off like
schema changes, and a configured mask holding on every path — bodies, lists, filters, sorting,
exports, history, the schema endpoint — for stored, custom and formula fields."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from tests.api.test_custom_fields import Schema, signed_off
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

Body = dict[str, Any]


def matrix(api: Api, noun: str) -> dict[str, Body]:
    response = api.request("GET", "/field-security", params={"record_type": noun})
    assert response.status_code == 200, response.text
    return {item["field"]: item for item in response.json()["items"][0]["fields"]}


def configure(client: TestClient, tenant: Tenant, noun: str, field: str, roles: Body, asker: str = "admin") -> Body:
    """Ask (as ``asker``) and have the sales VP and the IT director sign off."""
    asked = Api(client, tenant[asker]).request("PUT", f"/field-security/{noun}/{field}", json={"roles": roles})
    return signed_off(client, tenant, asked)


def test_the_matrix_shows_the_defaults_and_only_fields_the_caller_reads(client: TestClient, tenant: Tenant) -> None:
    vp, admin = Api(client, tenant["sales_vp"]), Api(client, tenant["admin"])

    seen_by_vp = matrix(vp, "account")
    seen_by_admin = matrix(admin, "account")

    credit = seen_by_vp["credit_line"]["roles"]
    assert (credit["cfo"]["read"], credit["rep"]["read"], credit["rep"]["configured"]) == (True, False, False)
    assert "credit_line" not in seen_by_admin  # nobody configures what they cannot read
    assert seen_by_admin["industry"]["roles"]["rep"] == {"read": True, "edit": True, "configured": False}
    assert "id" not in seen_by_admin
    assert "owner_id" not in seen_by_admin
    assert "name" not in seen_by_admin
    assert_problem(Api(client, tenant["rep"]).request("GET", "/field-security"), 403)


def test_a_configured_mask_applies_after_two_sign_offs_and_hides_the_field_everywhere(
    client: TestClient, tenant: Tenant
) -> None:
    admin, rep, manager = (Api(client, tenant[k]) for k in ("admin", "rep", "manager"))
    account = rep.create("accounts", {"name": f"机密医院 {tag()}", "industry": "医药"})
    rep.patch("accounts", account["id"], {"industry": "医疗器械"})

    asked = admin.request("PUT", "/field-security/account/industry", json={"roles": {"rep": {"read": False}}})
    assert asked.status_code == 202, asked.text
    assert asked.json()["impact"]["roles_losing_read"] == ["rep"]
    assert rep.read("accounts", account["id"])["industry"] == "医疗器械"  # nothing until signed off
    signed_off(client, tenant, asked)

    body = rep.read("accounts", account["id"])
    listed = rep.request("GET", "/accounts", params={"q": account["name"]}).json()["items"]
    history = rep.request("GET", f"/accounts/{account['id']}/history").json()["items"]
    exported = client.get("/api/v1/exports/accounts", headers=tenant["rep"].headers).content.decode("utf-8-sig")
    schema = rep.request("GET", "/schema/accounts").json()

    assert "industry" not in body
    assert listed
    assert all("industry" not in item for item in listed)
    assert all("industry" not in entry["changes"] for entry in history)
    assert "industry" not in exported.splitlines()[0]
    assert "industry" not in schema["properties"]
    assert_problem(rep.request("GET", "/accounts", params={"industry": "医药"}), 403, field="industry")
    assert_problem(rep.patch("accounts", account["id"], {"industry": "x"}), 403, field="industry")
    assert manager.read("accounts", account["id"])["industry"] == "医疗器械"  # other roles keep it


def test_an_edit_denied_field_is_read_but_a_write_is_refused_naming_it(client: TestClient, tenant: Tenant) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    account = rep.create("accounts", {"name": f"只读医院 {tag()}", "industry": "医药"})
    configure(client, tenant, "account", "industry", {"rep": {"read": True, "edit": False}})

    refused = rep.patch("accounts", account["id"], {"industry": "化工", "name": "改名"})
    created = rep.request("POST", "/accounts", json={"name": f"新医院 {tag()}", "industry": "化工"})

    assert_problem(refused, 403, field="industry")
    assert_problem(created, 403, field="industry")
    after = rep.read("accounts", account["id"])
    assert (after["industry"], after["name"], after["version"]) == ("医药", account["name"], account["version"])
    assert matrix(Api(client, tenant["admin"]), "account")["industry"]["roles"]["rep"] == {
        "read": True,
        "edit": False,
        "configured": True,
    }
    assert manager.patch("accounts", account["id"], {"industry": "化工"}).status_code == 200


def test_a_custom_field_masked_by_configuration_masks_the_formula_reading_it(
    client: TestClient, tenant: Tenant
) -> None:
    schema = Schema(client, tenant)
    schema.define(name="potential", field_type="money", label_zh="潜力", label_en="Potential")
    schema.define(name="potential_x2", field_type="formula", formula="custom.potential * 2", label_en="Twice")
    rep, cfo = Api(client, tenant["rep"]), Api(client, tenant["cfo"])
    account = rep.create("accounts", {"name": f"潜力医院 {tag()}", "custom": {"potential": "1200.50"}})
    assert rep.read("accounts", account["id"])["custom"]["potential_x2"] == 2401.0

    configure(client, tenant, "account", "custom.potential", {"rep": {"read": False}, "manager": {"read": False}})

    body = rep.read("accounts", account["id"])
    assert "potential" not in body["custom"]
    assert "potential_x2" not in body["custom"]
    assert_problem(
        rep.request("GET", "/accounts", params={"custom.potential_x2__gt": "1"}), 422, field="custom.potential_x2__gt"
    )
    exported = client.get("/api/v1/exports/accounts", headers=tenant["rep"].headers).content.decode("utf-8-sig")
    assert "potential" not in exported.splitlines()[0]
    assert_problem(rep.patch("accounts", account["id"], {"custom": {"potential": 1}}), 403, field="custom.potential")
    assert cfo.read("accounts", account["id"])["custom"] == {"potential": "1200.50", "potential_x2": 2401.0}


def test_an_applied_mask_is_rolled_back_by_a_signed_off_request(client: TestClient, tenant: Tenant) -> None:
    admin, rep = Api(client, tenant["admin"]), Api(client, tenant["rep"])
    account = rep.create("accounts", {"name": f"回滚医院 {tag()}", "industry": "医药"})
    applied = configure(client, tenant, "account", "industry", {"rep": {"read": False}})
    assert "industry" not in rep.read("accounts", account["id"])

    rollback = signed_off(client, tenant, admin.request("POST", f"/change-requests/{applied['id']}/rollback", json={}))

    assert (rollback["kind"], rollback["payload"]["roles"]) == ("field_security.update", {"rep": None})
    assert rep.read("accounts", account["id"])["industry"] == "医药"
    assert matrix(admin, "account")["industry"]["roles"]["rep"]["configured"] is False


def test_bad_changes_are_refused_naming_the_role_or_field(client: TestClient, tenant: Tenant) -> None:
    admin, vp = Api(client, tenant["admin"]), Api(client, tenant["sales_vp"])
    Schema(client, tenant).define(name="twice", field_type="formula", formula="employees * 2", label_en="Twice")

    def put(api: Api, path: str, roles: Body) -> Any:
        return api.request("PUT", f"/field-security/{path}", json={"roles": roles})

    assert_problem(put(admin, "account/industry", {"boss": {"read": True}}), 422, field="roles.boss")
    assert_problem(put(admin, "account/industry", {"rep": {"read": False, "edit": True}}), 422, field="roles.rep.edit")
    assert_problem(
        put(admin, "account/custom.twice", {"rep": {"read": True, "edit": True}}), 422, field="roles.rep.edit"
    )
    assert_problem(put(admin, "account/industry", {"rep": None}), 422, field="roles")  # nothing to go back from
    assert_problem(put(admin, "account/credit_line", {"rep": {"read": True}}), 404)  # admin cannot read it
    assert_problem(put(admin, "account/owner_id", {"rep": {"read": False}}), 404)
    assert_problem(put(admin, "nothing/industry", {"rep": {"read": False}}), 404)
    assert_problem(put(Api(client, tenant["rep"]), "account/industry", {"rep": {"read": False}}), 403)
    # the sales VP reads the credit line but, as configured by default, may hand out only what they have
    assert put(vp, "account/credit_line", {"director": {"read": True, "edit": True}}).status_code == 202


def test_a_mask_change_is_audited(client: TestClient, db: Database, tenant: Tenant) -> None:
    configure(client, tenant, "account", "industry", {"partner_user": {"read": False}})

    with db.reading(tenant["admin"].actor) as session:
        entries = session.query(AuditEntry).filter(AuditEntry.action == "field_security.updated").all()
    assert [entry.changes["field"] for entry in entries] == [[None, "industry"]]
    assert entries[0].changes["roles.partner_user"] == [None, {"read": False, "edit": False}]


def test_search_does_not_match_on_a_masked_column(client: TestClient, tenant: Tenant) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    ref = f"ERP-{tag()}"
    rep.create("accounts", {"name": f"搜索医院 {tag()}", "external_ref": ref})
    assert len(rep.request("GET", "/accounts", params={"q": ref}).json()["items"]) == 1

    configure(client, tenant, "account", "external_ref", {"rep": {"read": False}})

    assert rep.request("GET", "/accounts", params={"q": ref}).json()["items"] == []  # a match would reveal it
    assert len(manager.request("GET", "/accounts", params={"q": ref}).json()["items"]) == 1


def test_a_mask_change_shows_the_metrics_and_dashboards_built_on_the_field(client: TestClient, tenant: Tenant) -> None:
    admin = Api(client, tenant["admin"])

    asked = admin.request("PUT", "/field-security/opportunity/amount", json={"roles": {"rep": {"read": False}}})

    assert asked.status_code == 202, asked.text
    impact = asked.json()["impact"]
    assert "revenue" in {metric["key"] for metric in impact["metrics"]}
    assert "performance" in {dashboard["key"] for dashboard in impact["dashboards"]}


def test_a_configured_mask_hides_the_metrics_built_on_the_field_from_every_aggregate_path(
    client: TestClient, tenant: Tenant
) -> None:
    rep = Api(client, tenant["rep"])
    listed = rep.request("GET", "/metrics").json()["metrics"]
    assert "revenue" in {metric["key"] for metric in listed}
    assert "revenue" in rep.request("GET", "/performance").json()["metrics"]

    configure(client, tenant, "opportunity", "amount", {"rep": {"read": False}})

    assert "revenue" not in {metric["key"] for metric in rep.request("GET", "/metrics").json()["metrics"]}
    performance = rep.request("GET", "/performance")
    assert performance.status_code == 200, performance.text
    assert "revenue" not in performance.json()["metrics"]
    assert "revenue" not in performance.json()["totals"]
    assert_problem(rep.request("GET", "/lineage/metric/revenue"), 404)
    lineage = rep.request("GET", "/lineage/dashboard/performance").json()
    assert "revenue" not in {metric["key"] for metric in lineage["metrics"]}
    threshold = rep.request(
        "POST", "/alert-thresholds", json={"metric": "revenue", "direction": "below", "value": "1", "period": "quarter"}
    )
    assert_problem(threshold, 422, field="metric")
    # the manager, whose read was not taken away, still sees it
    assert "revenue" in Api(client, tenant["manager"]).request("GET", "/performance").json()["metrics"]
