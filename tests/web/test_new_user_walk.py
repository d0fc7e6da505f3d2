"""What a tester walking the demo as a new user found on the pages (eleventh session): an expense
claim's problems named by the form's labels, and approvers to add told apart by username and role."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.approvals.test_approvals_api import contract, flow, step, submit
from tests.factories import Tenant
from tests.samples import Api, new_account
from tests.web.pages import browse_as
from tests.web.test_settings_pages import browser, csrf_of
from tests.web.test_sign_in import ENGLISH


def test_an_expense_claims_problems_are_named_by_the_forms_labels(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    csrf = browse_as(client, db, tenant["rep"])

    english = client.post(
        "/approvals/expense",
        data={"csrf": csrf, "amount": "-5", "category": "差旅", "spent_on": "2026-03-01"},
        headers=ENGLISH,
    )
    client.get("/language/zh_CN")
    chinese = client.post("/approvals/expense", data={"csrf": csrf, "amount": "", "category": "", "spent_on": ""})

    assert english.status_code == 422
    assert "Amount: give a positive amount" in english.text
    assert "details." not in english.text
    assert chinese.status_code == 422
    assert "金额：" in chinese.text or "金额: " in chinese.text
    assert "类别" in chinese.text
    assert "details." not in chinese.text


def test_approvers_to_add_are_told_apart_by_username_and_role(client: TestClient, db: Database, tenant: Tenant) -> None:
    flow(Api(client, tenant["sales_vp"]), "contract", [{"name": "默认", "priority": 9, "conditions": [],
         "steps": [step({"kind": "supervisor"}, name="直属主管")]}])  # fmt: skip
    rep = Api(client, tenant["rep"])
    submitted = submit(rep, "contract", contract(rep, "5000.00")["id"])
    browse_as(client, db, tenant["manager"])

    page = client.get(f"/approvals/{submitted['id']}", headers=ENGLISH)

    assert page.status_code == 200, page.text
    vp = tenant["sales_vp"]
    assert f"({vp.username} · Sales VP)</option>" in page.text


def test_a_bad_visit_photo_is_named_by_its_file(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    visit = rep.create("activities", {"kind": "visit", "account_id": new_account(rep)["id"]})
    csrf = browse_as(client, db, tenant["rep"])
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

    response = client.post(
        f"/fieldwork/visits/{visit['id']}/check-in",
        data={"csrf": csrf, "latitude": "31.2304", "longitude": "121.4737", "accuracy": "10"},
        files=[("photos", ("门头.png", png, "image/png")), ("photos", ("合同扫描.pdf", b"%PDF-1.7", "image/png"))],
        headers=ENGLISH,
    )

    assert response.status_code == 422, response.text
    assert "合同扫描.pdf: is not a JPEG, PNG or WebP image" in response.text


def test_the_users_page_offers_no_partner_role_in_the_sellers_organization(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    """The role is refused there (a partner user belongs to a partner organization): the form does
    not offer it, and a forged submission is refused in the page's language, beside the role."""
    admin = browser(client, db, tenant["admin"])
    form = admin.get("/settings/users/new")
    assert form.status_code == 200
    assert 'value="partner_user"' not in form.text
    forged = admin.post(
        "/settings/users/new",
        data={"csrf": csrf_of(form.text), "username": "t.partner", "display_name": "T", "role": "partner_user",
              "locale": "", "password": "a-long-enough-pass-1"},
    )  # fmt: skip
    assert forged.status_code == 422
    assert "合作伙伴用户属于合作伙伴组织" in forged.text
    assert "closeloop user add" not in forged.text
