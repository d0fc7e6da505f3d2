"""Firewall 3 (GOV-5): a schema change takes effect only after two sign-offs by different people
in the required roles; self-approval is refused, a rejection needs a reason, all is audited, and
an applied change is rolled back by a new request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from tests.factories import Member, Tenant
from tests.samples import Api, assert_problem, tag

FIELD = {
    "record_type": "account",
    "name": "region_score",
    "field_type": "number",
    "label_zh": "区域评分",
    "label_en": "Region score",
}


@pytest.fixture
def second_vp(db: Database, tenant: Tenant) -> Member:
    """Another sales VP of the tenant (for 'two people of the same role' cases)."""
    from tests.factories import Member as MemberType

    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        user = org_service.create_user(
            session,
            system,
            data=org_service.NewUser(username=f"vp2-{tag()}", display_name="副总裁二", role=Role.SALES_VP),
        )
        _, secret = org_service.issue_token(session, system, user=user, name="test")
        return MemberType(user.id, user.username, Role.SALES_VP, secret, org_service.actor_for(session, user))


def as_(client: TestClient, member: Member) -> Api:
    return Api(client, member)


def field_names(api: Api) -> list[str]:
    return [item["name"] for item in api.request("GET", "/custom-fields").json()["items"]]


def test_a_change_waits_for_both_sign_offs_then_applies(client: TestClient, tenant: Tenant) -> None:
    admin, vp, it = (as_(client, tenant[k]) for k in ("admin", "sales_vp", "it_director"))

    asked = admin.request("POST", "/custom-fields", json=FIELD, params={"reason": "区域经理要按评分排客户"})
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert (request["status"], request["waiting_for"], request["kind"]) == (
        "pending",
        ["sales_vp", "it_director"],
        "custom_field.create",
    )
    assert asked.headers["location"] == f"/api/v1/change-requests/{request['id']}"
    assert "region_score" not in field_names(admin)

    first = vp.request("POST", f"/change-requests/{request['id']}/approve")
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["waiting_for"]) == ("pending", ["it_director"])
    assert "region_score" not in field_names(admin)  # one approval does nothing

    second = it.request("POST", f"/change-requests/{request['id']}/approve")

    assert second.status_code == 200, second.text
    applied = second.json()
    assert applied["status"] == "applied"
    assert [a["role"] for a in applied["approvals"]] == ["sales_vp", "it_director"]
    assert "region_score" in field_names(admin)
    assert as_(client, tenant["rep"]).create("accounts", {"name": f"评分医院 {tag()}", "custom": {"region_score": 9}})


def test_nobody_approves_their_own_request_nor_twice_nor_outside_the_roles(
    client: TestClient, tenant: Tenant, second_vp: Member
) -> None:
    vp, it, admin = (as_(client, tenant[k]) for k in ("sales_vp", "it_director", "admin"))
    request = vp.request("POST", "/custom-fields", json=FIELD).json()
    path = f"/change-requests/{request['id']}/approve"

    own = vp.request("POST", path)
    outsider = admin.request("POST", path)
    rep = as_(client, tenant["rep"]).request("POST", path)
    assert_problem(own, 403)
    assert_problem(outsider, 403)
    assert_problem(rep, 403)

    assert it.request("POST", path).status_code == 200
    assert_problem(it.request("POST", path), 409)  # the same person again
    applied = as_(client, second_vp).request("POST", path)  # a sales VP who did not ask

    assert applied.json()["status"] == "applied"


def test_two_people_of_the_same_role_are_not_two_sign_offs(
    client: TestClient, tenant: Tenant, second_vp: Member
) -> None:
    admin = as_(client, tenant["admin"])
    request = admin.request("POST", "/custom-fields", json=FIELD).json()
    path = f"/change-requests/{request['id']}/approve"

    assert as_(client, tenant["sales_vp"]).request("POST", path).status_code == 200
    again = as_(client, second_vp).request("POST", path)

    assert_problem(again, 409)
    assert "region_score" not in field_names(admin)


def test_a_rejection_needs_a_reason_and_ends_the_request(client: TestClient, tenant: Tenant) -> None:
    admin, it = as_(client, tenant["admin"]), as_(client, tenant["it_director"])
    request = admin.request("POST", "/custom-fields", json=FIELD).json()
    path = f"/change-requests/{request['id']}"

    no_reason = it.request("POST", f"{path}/reject", json={"reason": "  "})
    rejected = it.request("POST", f"{path}/reject", json={"reason": "与已有的客户分级重复"})
    late = as_(client, tenant["sales_vp"]).request("POST", f"{path}/approve")

    assert_problem(no_reason, 422, field="reason")
    assert (rejected.json()["status"], rejected.json()["rejection_reason"]) == ("rejected", "与已有的客户分级重复")
    assert_problem(late, 409)
    assert "region_score" not in field_names(admin)


def test_a_bad_change_is_refused_when_asked_not_when_signed(client: TestClient, tenant: Tenant) -> None:
    admin = as_(client, tenant["admin"])

    bad = admin.request("POST", "/custom-fields", json={**FIELD, "min_value": "9", "max_value": "1"})
    rep = as_(client, tenant["rep"]).request("POST", "/custom-fields", json=FIELD)

    assert_problem(bad, 422, field="max_value")
    assert_problem(rep, 403)
    assert admin.request("GET", "/change-requests").json()["items"] == []


def test_a_change_shows_its_impact_and_everything_is_audited(client: TestClient, tenant: Tenant) -> None:
    admin, vp, it = (as_(client, tenant[k]) for k in ("admin", "sales_vp", "it_director"))
    choices = [{"value": v, "label_zh": v, "label_en": v} for v in ("A", "B", "C")]
    created = admin.request(
        "POST", "/custom-fields", json={**FIELD, "name": "grade", "field_type": "choice", "choices": choices}
    ).json()
    for api in (vp, it):
        api.request("POST", f"/change-requests/{created['id']}/approve")
    field_id = admin.request("GET", f"/change-requests/{created['id']}").json()["target_id"]
    rep = as_(client, tenant["rep"])
    for grade in ("A", "B", "B", None):
        rep.create("accounts", {"name": f"分级医院 {tag()}", "custom": {"grade": grade}})

    change = admin.request("PATCH", f"/custom-fields/{field_id}", json={"choices": choices[:1]}).json()

    assert change["impact"] == {
        "records_with_value": 3,
        "removed_choices": ["B", "C"],
        "records_with_removed_choices": 2,
        "dependents": [],
        "dashboards": [],
        "rules": [],
    }
    trail = vp.request("GET", "/audit", params={"subject_type": "change_request"}).json()["items"]
    assert [(e["action"], e["subject_id"]) for e in trail] == [
        ("change_request.created", change["id"]),
        ("change_request.applied", created["id"]),
        ("change_request.approved", created["id"]),
        ("change_request.approved", created["id"]),
        ("change_request.created", created["id"]),
    ]
    applied_by = vp.request("GET", "/audit", params={"action": "custom_field.created"}).json()["items"][0]
    assert applied_by["actor_label"] == f"change request {created['id']}"


def test_an_applied_change_is_rolled_back_by_a_new_signed_off_request(client: TestClient, tenant: Tenant) -> None:
    admin, vp, it = (as_(client, tenant[k]) for k in ("admin", "sales_vp", "it_director"))

    def sign(request: dict[str, Any]) -> dict[str, Any]:
        for api in (vp, it):
            response = api.request("POST", f"/change-requests/{request['id']}/approve")
        result: dict[str, Any] = response.json()
        return result

    created = sign(admin.request("POST", "/custom-fields", json=FIELD).json())
    relabel = sign(admin.request("PATCH", f"/custom-fields/{created['target_id']}", json={"label_en": "Score"}).json())
    assert relabel["status"] == "applied"

    undo_relabel = admin.request("POST", f"/change-requests/{relabel['id']}/rollback", json={})
    assert undo_relabel.status_code == 202, undo_relabel.text
    assert undo_relabel.json()["rolls_back_id"] == relabel["id"]
    sign(undo_relabel.json())
    assert admin.request("GET", f"/custom-fields/{created['target_id']}").json()["label_en"] == "Region score"

    undo_create = sign(admin.request("POST", f"/change-requests/{created['id']}/rollback", json={}).json())
    assert undo_create["kind"] == "custom_field.delete"
    assert "region_score" not in field_names(admin)
    assert_problem(admin.request("POST", f"/change-requests/{created['id']}/rollback", json={}), 409)


def test_the_requester_withdraws_and_others_cannot(client: TestClient, tenant: Tenant) -> None:
    admin, vp = as_(client, tenant["admin"]), as_(client, tenant["sales_vp"])
    request = admin.request("POST", "/custom-fields", json=FIELD).json()

    assert_problem(vp.request("POST", f"/change-requests/{request['id']}/cancel"), 403)
    withdrawn = admin.request("POST", f"/change-requests/{request['id']}/cancel")

    assert withdrawn.json()["status"] == "cancelled"


def test_another_organization_never_sees_the_requests(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    request = as_(client, tenant["admin"]).request("POST", "/custom-fields", json=FIELD).json()
    other_vp = as_(client, other_tenant["sales_vp"])

    assert other_vp.request("GET", "/change-requests").json()["items"] == []
    assert_problem(other_vp.request("POST", f"/change-requests/{request['id']}/approve"), 404)


def test_a_second_request_for_the_same_field_is_refused_while_the_first_is_pending(
    client: TestClient, tenant: Tenant
) -> None:
    admin, vp, it = (as_(client, tenant[k]) for k in ("admin", "sales_vp", "it_director"))
    first = admin.request("POST", "/custom-fields", json=FIELD).json()

    again = admin.request("POST", "/custom-fields", json=FIELD | {"label_en": "Region score 2"})
    problem = assert_problem(again, 409, field="name", code="pending_request")
    assert "region_score" in problem["detail"]
    assert f"Change request {first['id']} already asks" in problem["detail"]
    assert admin.request("POST", f"/change-requests/{first['id']}/cancel").status_code == 200
    first = admin.request("POST", "/custom-fields", json=FIELD).json()  # withdrawn: it may be asked again

    for api in (vp, it):
        assert api.request("POST", f"/change-requests/{first['id']}/approve").status_code == 200
    assert "region_score" in field_names(admin)
    assert_problem(admin.request("POST", "/custom-fields", json=FIELD), 409, field="name", code="duplicate")


def test_a_sign_off_that_can_no_longer_apply_ends_the_request_failed_with_a_reason(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    from closeloop.crm import customfields
    from closeloop.crm.customfields import DefinitionCreate

    admin, vp, it = (as_(client, tenant[k]) for k in ("admin", "sales_vp", "it_director"))
    asked = admin.request("POST", "/custom-fields", json=FIELD).json()
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:  # the schema moved on meanwhile (an operator's import)
        customfields.create_definition(session, system, DefinitionCreate.model_validate(FIELD))

    assert vp.request("POST", f"/change-requests/{asked['id']}/approve").status_code == 200
    last = it.request("POST", f"/change-requests/{asked['id']}/approve")
    assert last.status_code == 200, last.text
    ended = admin.request("GET", f"/change-requests/{asked['id']}").json()
    assert ended["status"] == "failed"
    assert ended["failure"] == "account already has a custom field 'region_score'"
    assert "seq" not in ended["failure"]
