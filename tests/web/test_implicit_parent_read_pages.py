"""The workspace of a rep whose deal sits on another rep's account: the deal names its customer, the
account opens read-only (no edit, no transfer; the edit form is refused), the list offers no edit,
and the rep's export holds it. A rep without such a deal still gets 404."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, tag
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH


def _account_of_rep2_with_a_deal_of_rep(client: TestClient, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    vp = Api(client, tenant["sales_vp"])
    account = vp.create(
        "accounts", {"name": f"瑞金医院 {tag()}", "credit_line": "987654.00", "owner_id": tenant["rep2"].user_id}
    )
    deal = vp.create(
        "opportunities", {"name": f"影像设备 {tag()}", "account_id": account["id"], "owner_id": tenant["rep"].user_id}
    )
    return account, deal


def test_the_deal_page_names_the_customer_and_the_account_opens_read_only(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account, deal = _account_of_rep2_with_a_deal_of_rep(client, tenant)
    browse_as(client, db, tenant["rep"])

    deal_page = client.get(f"/opportunities/{deal['id']}", headers=ENGLISH)
    account_page = client.get(f"/accounts/{account['id']}", headers=ENGLISH)
    edit_form = client.get(f"/accounts/{account['id']}/edit", headers=ENGLISH)
    listed = client.get("/accounts", params={"q": account["name"].split()[-1]}, headers=ENGLISH)
    exported = client.get(
        "/exports/accounts", params={"format": "csv", "q": account["name"].split()[-1]}, headers=ENGLISH
    )

    assert deal_page.status_code == 200
    assert f'href="/accounts/{account["id"]}"' in deal_page.text
    assert account["name"] in deal_page.text
    assert account_page.status_code == 200
    assert account["name"] in account_page.text
    assert 'id="read-only"' in account_page.text
    assert f'href="/accounts/{account["id"]}/edit"' not in account_page.text
    assert 'id="transfer-h"' not in account_page.text
    assert "987,654" not in account_page.text  # the credit line stays masked for a rep
    assert edit_form.status_code == 403
    assert listed.status_code == 200
    assert f'href="/accounts/{account["id"]}"' in listed.text
    assert f'href="/accounts/{account["id"]}/edit"' not in listed.text
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [row for row in rows[1:] if account["name"] in row] != []


def test_the_owner_still_edits_and_a_rep_without_a_deal_finds_nothing(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account, _ = _account_of_rep2_with_a_deal_of_rep(client, tenant)
    other = Api(client, tenant["sales_vp"]).create(
        "accounts", {"name": f"华山医院 {tag()}", "owner_id": tenant["rep2"].user_id}
    )
    browse_as(client, db, tenant["rep2"])
    as_owner = client.get(f"/accounts/{account['id']}", headers=ENGLISH)
    browse_as(client, db, tenant["rep"])
    hidden = client.get(f"/accounts/{other['id']}", headers=ENGLISH)

    assert f'href="/accounts/{account["id"]}/edit"' in as_owner.text
    assert 'id="read-only"' not in as_owner.text
    assert hidden.status_code == 404
