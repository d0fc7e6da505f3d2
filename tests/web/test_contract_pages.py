"""Contracts in the workspace (CN-3, web): the list with its filters and row scope, the new-contract
form prefilled from an opportunity, field errors beside their inputs, the edit form for drafts only,
a plan instalment on the contract page, "submit for approval" under a contract flow, and partners
kept out. Also the account transfer form (direct, and through an ``account_transfer`` flow) and the
approval snapshot shown in words instead of ids and codes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.db.session import Database
from closeloop.pools.models import OwnerChange
from tests.approvals.test_approvals_api import flow
from tests.factories import Tenant
from tests.samples import Api, new_account
from tests.web.test_settings_pages import browser, csrf_of

SIMPLE = [{"name": "默认", "conditions": [], "steps": [
    {"name": "直属主管", "mode": "any", "approvers": [{"kind": "supervisor"}]}]}]  # fmt: skip


def _new_contract(page: TestClient, form: str, **fields: str) -> tuple[int, str]:
    """Post the new-contract form; (status, the contract's id or the page)."""
    data = {"csrf": csrf_of(form), "currency": "CNY", **fields}
    answer = page.post("/contracts/new", data=data, follow_redirects=False)
    if answer.status_code == 303:
        return 303, answer.headers["location"]
    return answer.status_code, answer.text


def test_a_rep_starts_lead_to_cash_from_the_opportunity(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    account = new_account(api)
    deal = api.create(
        "opportunities", {"name": "影像系统升级", "account_id": account["id"], "amount": "380000.00", "stage": "won"}
    )
    rep = browser(client, db, tenant["rep"])
    opportunity = rep.get(f"/opportunities/{deal['id']}").text
    assert f'href="/contracts/new?opportunity_id={deal["id"]}"' in opportunity
    assert "新建合同" in opportunity

    form = rep.get(f"/contracts/new?opportunity_id={deal['id']}")
    assert form.status_code == 200, form.text
    assert 'value="影像系统升级"' in form.text  # the title, account and amount come from the deal
    assert 'value="380000.00"' in form.text
    assert re.search(rf'<option value="{account["id"]}"[^>]*selected', form.text)
    assert "合同名称" in form.text
    assert "职位" not in form.text

    status, page = _new_contract(rep, form.text, title="", amount="abc", ends_on="2026-01-01", starts_on="2026-06-01")
    assert status == 422
    assert re.search(r'id="f-title-error">此项必填', page), page  # each message beside its input
    assert 'id="f-amount-error"' in page

    status, location = _new_contract(
        rep, form.text, title="影像系统升级合同", account_id=str(account["id"]),
        opportunity_id=str(deal["id"]), amount="380000.00", owner_id=str(tenant["rep"].user_id),
    )  # fmt: skip
    assert status == 303, location
    contract_id = int(location.rsplit("/", 1)[1])
    page = rep.get(location).text
    assert "影像系统升级合同" in page
    assert "草稿" in page
    assert f'href="/contracts/{contract_id}/edit' in page
    assert 'id="submit-contract"' not in page  # no contract flow in this organization

    added = rep.post(
        f"/contracts/{contract_id}/instalments",
        data={"csrf": csrf_of(page), "amount": "190000", "due_on": "2026-12-31", "remind_days": "5"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert 'data-status="pending"' in rep.get(location).text

    listed = rep.get("/contracts?status=draft&q=影像系统")
    assert listed.status_code == 200
    assert f'href="/contracts/{contract_id}"' in listed.text
    assert "¥380,000.00" in listed.text
    assert f'href="/contracts/{contract_id}"' not in rep.get("/contracts?status=active").text
    assert f'href="/contracts/{contract_id}"' in rep.get(f"/contracts?account_id={account['id']}").text
    account_page = rep.get(f"/accounts/{account['id']}").text
    assert f'href="/contracts/new?account_id={account["id"]}"' in account_page
    assert 'id="account-contracts"' in account_page

    edit = rep.get(f"/contracts/{contract_id}/edit")
    assert edit.status_code == 200
    saved = rep.post(
        f"/contracts/{contract_id}/edit",
        data={"csrf": csrf_of(edit.text), "title": "影像系统升级合同", "status": "active", "signed_on": "2026-11-20",
              "number": re.findall(r'name="number"[^>]*value="([^"]+)"', edit.text)[0],
              "amount": "380000.00", "currency": "CNY", "account_id": str(account["id"]),
              "owner_id": str(tenant["rep"].user_id),
              "version": re.findall(r'name="version" value="(\d+)"', edit.text)[0]},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    refused = rep.get(f"/contracts/{contract_id}/edit")
    assert refused.status_code == 409
    assert "只有草稿合同可以编辑" in refused.text
    assert f'href="/contracts/{contract_id}/edit' not in rep.get(location).text
    assert f'href="/contracts/{contract_id}/edit' not in rep.get("/contracts").text  # no edit link in the list


def test_row_scope_partners_and_the_navigation(
    client: TestClient, db: Database, tenant: Tenant, partner: Tenant
) -> None:
    theirs = Api(client, tenant["rep2"]).create("contracts", {"title": "别人的合同", "amount": "1000.00"})
    rep = browser(client, db, tenant["rep"])
    listing = rep.get("/contracts")
    assert listing.status_code == 200
    assert "别人的合同" not in listing.text
    assert 'href="/contracts"' in listing.text  # in the navigation, under 外勤与回款
    assert rep.get(f"/contracts/{theirs['id']}").status_code == 404
    assert rep.get(f"/contracts/{theirs['id']}/edit").status_code == 404
    manager = browser(client, db, tenant["manager"])
    assert "别人的合同" in manager.get("/contracts").text

    dealer = browser(client, db, partner["partner_user"])
    assert dealer.get("/contracts").status_code == 403
    assert dealer.get("/contracts/new").status_code == 403
    assert dealer.get(f"/contracts/{theirs['id']}").status_code in (403, 404)
    assert 'href="/contracts"' not in dealer.get("/").text

    english = browser(client, db, tenant["manager"], locale="en").get("/contracts")
    assert "New contract" in english.text
    assert "Contract number" in english.text


def test_submit_a_draft_for_approval_and_read_the_snapshot(client: TestClient, db: Database, tenant: Tenant) -> None:
    flow(Api(client, tenant["sales_vp"]), "contract", SIMPLE)
    api = Api(client, tenant["rep"])
    account = new_account(api)
    created = api.create(
        "contracts",
        {"title": "设备采购合同", "account_id": account["id"], "amount": "250000.00", "signed_on": "2026-11-20"},
    )
    rep = browser(client, db, tenant["rep"])
    page = rep.get(f"/contracts/{created['id']}").text
    assert 'id="submit-contract"' in page
    edit = rep.get(f"/contracts/{created['id']}/edit").text
    assert 'name="status"' not in edit  # in force by approval only, not by an edit
    sneaked = rep.post(
        f"/contracts/{created['id']}/edit",
        data={"csrf": csrf_of(edit), "title": "设备采购合同", "status": "active", "signed_on": "2026-11-20",
              "number": created["number"], "amount": "250000.00", "currency": "CNY",
              "account_id": str(account["id"]), "owner_id": str(tenant["rep"].user_id)},
        follow_redirects=False,
    )  # fmt: skip
    assert sneaked.status_code == 303, sneaked.text
    assert api.read("contracts", created["id"])["status"] == "draft"  # the posted status was not taken
    submitted = rep.post(f"/contracts/{created['id']}/submit", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert submitted.status_code == 303, submitted.text
    detail = rep.get(submitted.headers["location"]).text
    snapshot = detail.split('id="snapshot"')[1].split("</table>")[0]
    assert "¥250,000.00" in snapshot
    assert "250000.00" not in snapshot
    assert account["name"] in snapshot  # the account by name, not its id
    assert "草稿" in snapshot
    assert "draft" not in snapshot
    assert "2026年11月20日" in snapshot
    assert "<td>Rep " in snapshot  # the owner by name
    page = rep.get(f"/contracts/{created['id']}").text
    assert 'id="submit-contract"' not in page  # pending: not twice
    assert 'id="contract-approval" data-status="pending"' in page


def _owner_of(db: Database, account_id: int) -> list[tuple[str, int | None, str | None]]:
    with db.reading(None, system=True) as session:
        rows = session.execute(
            select(OwnerChange.action, OwnerChange.to_owner_id, OwnerChange.reason)
            .where(OwnerChange.account_id == account_id)
            .order_by(OwnerChange.id)
        )
        return [(str(r[0]), r[1], r[2]) for r in rows]


def test_transfer_an_account_directly_and_through_approval(client: TestClient, db: Database, tenant: Tenant) -> None:
    account = new_account(Api(client, tenant["manager"]), owner_id=tenant["rep"].user_id, name="华山医院 转移测试")
    manager = browser(client, db, tenant["manager"])
    page = manager.get(f"/accounts/{account['id']}").text
    assert 'id="transfer-account"' in page
    assert "转移客户" in page
    refused = manager.post(
        f"/accounts/{account['id']}/transfer", data={"csrf": csrf_of(page), "to_owner_id": "", "reason": "调岗"}
    )
    assert refused.status_code == 422
    assert 'id="transfer-error"' in refused.text
    moved = manager.post(
        f"/accounts/{account['id']}/transfer",
        data={"csrf": csrf_of(page), "to_owner_id": str(tenant["rep2"].user_id), "reason": "调岗交接"},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert _owner_of(db, account["id"])[-1] == ("transferred", tenant["rep2"].user_id, "调岗交接")

    flow(Api(client, tenant["sales_vp"]), "account_transfer", SIMPLE)
    rep2 = browser(client, db, tenant["rep2"])
    page = rep2.get(f"/accounts/{account['id']}").text
    assert "审批" in page.split('id="transfer-account"')[1]
    asked = rep2.post(
        f"/accounts/{account['id']}/transfer",
        data={"csrf": csrf_of(page), "to_owner_id": str(tenant["rep"].user_id), "reason": "客户要求"},
        follow_redirects=False,
    )
    assert asked.status_code == 303, asked.text
    assert asked.headers["location"].startswith("/approvals/")
    assert _owner_of(db, account["id"])[-1][1] == tenant["rep2"].user_id  # not yet: waiting for approval
    detail = rep2.get(asked.headers["location"]).text
    snapshot = detail.split('id="snapshot"')[1].split("</table>")[0]
    assert "华山医院 转移测试" in snapshot
    assert "客户要求" in snapshot
    assert f">{tenant['rep'].user_id}<" not in snapshot  # people by name
