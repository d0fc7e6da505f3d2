"""The field-security page: a matrix of checkboxes per field and role; sending it asks for one
change request per changed field, signed off like schema changes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from closeloop.crm import changerequests
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.test_settings_pages import browser, csrf_of


def ticked(page: str) -> set[str]:
    """Names of the checked boxes of the page."""
    return set(re.findall(r'<input type="checkbox" name="([^"]+)" value="1"[^>]*checked>', page))


def test_the_matrix_page_asks_for_a_change_that_applies_after_two_sign_offs(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep_api = Api(client, tenant["rep"])
    account = rep_api.create("accounts", {"name": f"页面医院 {tag()}", "industry": "医药"})
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/settings/security", params={"record_type": "account"})

    assert page.status_code == 200
    assert "字段权限" in page.text
    assert "credit_line" not in page.text  # the admin does not read it, so it is not even in the source
    boxes = ticked(page.text)
    assert {"read:industry:rep", "edit:industry:rep", "read:custom.x:rep"} & boxes == {
        "read:industry:rep",
        "edit:industry:rep",
    }

    sent = admin.post(
        "/settings/security",
        data={
            "csrf": csrf_of(page.text),
            "record_type": "account",
            "reason": "代表不看行业",
            **dict.fromkeys(boxes - {"read:industry:rep", "edit:industry:rep"}, "1"),
        },
        follow_redirects=False,
    )

    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/settings/changes"
    with db.reading(tenant["admin"].actor) as session:
        pending = changerequests.list_requests(session, tenant["admin"].actor)
    assert [(r.kind, r.payload["field"], r.payload["roles"]) for r in pending] == [
        ("field_security.update", "industry", {"rep": {"read": False, "edit": False}})
    ]
    assert "industry" in rep_api.read("accounts", account["id"])
    for key in ("sales_vp", "it_director"):
        signer = tenant[key].actor
        with db.unit_of_work(signer) as session:
            changerequests.approve(session, signer, pending[0].id)
    assert "industry" not in rep_api.read("accounts", account["id"])


def test_the_page_refuses_a_missing_csrf_token_and_people_without_schema_rights(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = browser(client, db, tenant["admin"], locale="en")
    page = admin.get("/settings/security")
    assert "Field security" in page.text
    refused = admin.post("/settings/security", data={"csrf": "forged", "record_type": "account"})
    unchanged = admin.post(
        "/settings/security",
        data={"csrf": csrf_of(page.text), "record_type": "account", **dict.fromkeys(ticked(page.text), "1")},
    )
    rep = browser(client, db, tenant["rep"])
    forbidden = rep.get("/settings/security")

    assert refused.status_code == 400
    assert unchanged.status_code == 422
    assert forbidden.status_code == 403
    assert "/settings/security" not in forbidden.text.split("<main")[0]  # not in the rep's menu
