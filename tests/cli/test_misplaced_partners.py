"""Partner users left in a seller's own organization (made before the role was refused there):
they may do nothing on any path, the users page names them, and ``closeloop user check`` lists
them until an administrator changes their role."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.db.session import Database
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import User
from tests.factories import Member, Tenant
from tests.samples import Api, new_account
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH

pytestmark = pytest.mark.committing


def _misplaced(db: Database, tenant: Tenant) -> Member:
    """A partner user written straight into the seller's organization, as an older release allowed."""
    username = f"old.partner.{uuid.uuid4().hex[:6]}"
    with db.unit_of_work(None, system=True) as session:
        user = User(
            organization_id=tenant.organization_id,
            username=username,
            display_name="Old Partner",
            role=Role.PARTNER_USER.value,
        )
        session.add(user)
        session.flush()
        system = org_service.system_actor(tenant.organization_id)
        _, secret = org_service.issue_token(session, system, user=user, name="old")
        actor = org_service.actor_for(session, user)
        return Member(user.id, username, Role.PARTNER_USER, secret, actor)


def test_a_partner_user_in_the_sellers_organization_may_do_nothing(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = Api(client, tenant["rep"])
    account_id = new_account(rep)["id"]
    old = _misplaced(db, tenant)

    partner = Api(client, old)
    listed = partner.request("GET", "/accounts")
    read = partner.request("GET", f"/accounts/{account_id}")
    written = partner.request("PATCH", f"/accounts/{account_id}", json={"name": "taken over"})
    searched = client.get("/api/v1/search", headers=old.headers, params={"q": "a"})

    assert listed.status_code == 403, listed.text
    assert read.status_code in (403, 404), read.text
    assert written.status_code in (403, 404), written.text
    assert searched.status_code in (403, 404) or searched.json().get("items", []) == [], searched.text
    assert rep.read("accounts", account_id)["name"] != "taken over"

    browse_as(client, db, old)
    page = client.get(f"/accounts/{account_id}", headers=ENGLISH)
    assert page.status_code in (403, 404)
    assert "taken over" not in page.text
    assert old.actor.permissions == frozenset()


def test_the_users_page_and_user_check_name_them_until_the_role_is_changed(
    cli: CliRunner, client: TestClient, db: Database, tenant: Tenant
) -> None:
    old = _misplaced(db, tenant)

    found = cli.invoke(app, ["user", "check"])
    browse_as(client, db, tenant["admin"])
    listed = client.get("/settings/users", headers=ENGLISH)
    own = client.get(f"/settings/users/{old.user_id}", headers=ENGLISH)

    assert found.exit_code == 1, found.output
    assert old.username in found.output
    assert 'id="misplaced-partners"' in listed.text
    assert f'href="/settings/users/{old.user_id}"' in listed.text
    assert 'id="misplaced-partner"' in own.text

    deactivated = Api(client, tenant["admin"]).request("PATCH", f"/users/{old.user_id}", json={"is_active": False})
    assert deactivated.status_code == 200, deactivated.text
    assert cli.invoke(app, ["user", "check"]).exit_code == 0  # the advice followed: dealt with
    Api(client, tenant["admin"]).request("PATCH", f"/users/{old.user_id}", json={"is_active": True})
    assert cli.invoke(app, ["user", "check"]).exit_code == 1
    changed = Api(client, tenant["admin"]).request("PATCH", f"/users/{old.user_id}", json={"role": "rep"})
    assert changed.status_code == 200, changed.text
    again = cli.invoke(app, ["user", "check", "--org", str(tenant.organization_id)])
    browse_as(client, db, tenant["admin"])
    assert again.exit_code == 0, again.output
    assert old.username not in again.output
    assert 'id="misplaced-partners"' not in client.get("/settings/users", headers=ENGLISH).text
