"""The lead inbox: unassigned and mine, assigning (audited), and converting in one step with a
warning when an account with a similar name exists."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH


def test_a_rep_takes_an_unassigned_lead_and_it_moves_to_mine(client: TestClient, db: Database, tenant: Tenant) -> None:
    lead = Api(client, tenant["manager"]).create("leads", {"name": f"张三 {tag()}", "company": "某某科技"})
    csrf = browse_as(client, db, tenant["rep"])
    assert lead["name"] in client.get("/leads/inbox", headers=ENGLISH).text

    taken = client.post(f"/leads/{lead['id']}/assign", data={"csrf": csrf, "owner": "me"}, follow_redirects=False)

    assert taken.status_code == 303
    assert lead["name"] not in client.get("/leads/inbox?tab=unassigned", headers=ENGLISH).text
    assert lead["name"] in client.get("/leads/inbox?tab=mine", headers=ENGLISH).text
    history = Api(client, tenant["admin"]).request("GET", f"/leads/{lead['id']}/history").json()["items"]
    assert history[0]["action"] == "lead.assigned"


def test_assigning_without_the_csrf_token_changes_nothing(client: TestClient, db: Database, tenant: Tenant) -> None:
    lead = Api(client, tenant["manager"]).create("leads", {"name": f"李四 {tag()}"})
    browse_as(client, db, tenant["rep"])

    response = client.post(f"/leads/{lead['id']}/assign", data={"owner": "me"}, headers=ENGLISH)

    assert response.status_code == 400
    assert Api(client, tenant["admin"]).read("leads", int(str(lead["id"])))["owner_id"] is None


def test_a_manager_hands_a_lead_to_a_rep(client: TestClient, db: Database, tenant: Tenant) -> None:
    lead = Api(client, tenant["manager"]).create("leads", {"name": f"王五 {tag()}"})
    csrf = browse_as(client, db, tenant["manager"])
    inbox = client.get("/leads/inbox", headers=ENGLISH).text
    assert f'<option value="{tenant["rep"].user_id}"' in inbox
    assert "My team" in inbox

    client.post(f"/leads/{lead['id']}/assign", data={"csrf": csrf, "owner": str(tenant["rep"].user_id)})

    assert Api(client, tenant["admin"]).read("leads", int(str(lead["id"])))["owner_id"] == tenant["rep"].user_id


def test_converting_warns_of_a_similar_account_and_can_reuse_it(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = Api(client, tenant["rep"])
    unique = tag()
    existing = rep.create("accounts", {"name": f"北京协和医院{unique}"})
    lead = rep.create(
        "leads", {"name": "赵六", "company": f"北京协合医院{unique}有限公司", "owner_id": tenant["rep"].user_id}
    )
    csrf = browse_as(client, db, tenant["rep"])

    page = client.get(f"/leads/{lead['id']}/convert", headers=ENGLISH)

    assert "Possible duplicate" in page.text
    assert existing["name"] in page.text
    done = client.post(
        f"/leads/{lead['id']}/convert",
        data={"csrf": csrf, "account": str(existing["id"]), "create_opportunity": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/accounts/{existing['id']}"
    converted = rep.read("leads", int(str(lead["id"])))
    assert converted["status"] == "converted"
    assert converted["converted_account_id"] == existing["id"]
    assert converted["converted_opportunity_id"] is not None


def test_a_lead_without_a_lookalike_becomes_a_new_account(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    lead = rep.create("leads", {"name": "钱七", "company": f"独一无二 {tag()}", "owner_id": tenant["rep"].user_id})
    csrf = browse_as(client, db, tenant["rep"])

    assert "Possible duplicate" not in client.get(f"/leads/{lead['id']}/convert", headers=ENGLISH).text
    done = client.post(f"/leads/{lead['id']}/convert", data={"csrf": csrf, "account": "new"}, follow_redirects=False)

    account_id = int(done.headers["location"].rsplit("/", 1)[1])
    assert rep.read("accounts", account_id)["name"] == lead["company"]
    assert rep.read("leads", int(str(lead["id"])))["converted_opportunity_id"] is None


def test_similar_accounts_outside_the_scope_are_not_revealed(client: TestClient, db: Database, tenant: Tenant) -> None:
    unique = tag()
    Api(client, tenant["rep2"]).create("accounts", {"name": f"上海瑞金{unique}"})
    lead = Api(client, tenant["rep"]).create(
        "leads", {"name": "孙八", "company": f"上海瑞金{unique}", "owner_id": tenant["rep"].user_id}
    )
    browse_as(client, db, tenant["rep"])

    assert "Possible duplicate" not in client.get(f"/leads/{lead['id']}/convert", headers=ENGLISH).text
