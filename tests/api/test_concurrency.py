"""Writers racing each other: optimistic concurrency on one record, and one organization's audit chain."""

from __future__ import annotations

from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from tests.concurrency import at_once
from tests.factories import Tenant
from tests.samples import Api, new_account

pytestmark = pytest.mark.committing


def test_two_patches_with_the_same_if_match_one_wins_one_gets_412(client: TestClient, tenant: Tenant) -> None:
    rep = tenant["rep"]
    api = Api(client, rep)
    account = new_account(api)

    for round_number in range(3):
        version = api.read("accounts", account["id"])["version"]

        def patch(test_client: TestClient, city: str, version: int) -> int:
            response = test_client.patch(
                f"/api/v1/accounts/{account['id']}",
                json={"city": city},
                headers={**rep.headers, "If-Match": f'"{version}"'},
            )
            assert response.status_code in (200, 412), response.text
            return int(response.status_code)

        cities = (f"上海 {round_number}", f"北京 {round_number}")
        statuses = at_once(client.app, [partial(patch, city=city, version=version) for city in cities])

        assert sorted(statuses) == [200, 412], f"round {round_number}"
        assert api.read("accounts", account["id"])["version"] == version + 1
    history = api.request("GET", f"/accounts/{account['id']}/history").json()["items"]
    assert [item["action"] for item in history] == ["account.updated"] * 3 + ["account.created"]


def test_concurrent_writers_keep_the_audit_chain_whole(client: TestClient, tenant: Tenant, db: Database) -> None:
    writers = ["rep", "rep2", "manager", "director", "sales_vp", "admin"]

    def write(test_client: TestClient, key: str) -> list[int]:
        headers = tenant[key].headers
        ids = []
        for number in range(3):
            response = test_client.post("/api/v1/leads", json={"name": f"{key} {number}"}, headers=headers)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    created = at_once(client.app, [partial(write, key=key) for key in writers])

    assert len({record_id for ids in created for record_id in ids}) == 3 * len(writers)
    with db.reading(None, system=True) as session:
        assert list(audit.verify(session, tenant.organization_id)) == []
        seqs = list(
            session.scalars(
                select(AuditEntry.seq).where(tenant_clause(tenant.organization_id, AuditEntry)).order_by(AuditEntry.seq)
            )
        )
        lead_entries = session.scalars(
            select(AuditEntry.subject_id).where(
                tenant_clause(tenant.organization_id, AuditEntry), AuditEntry.action == "lead.created"
            )
        ).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert sorted(entry or 0 for entry in lead_entries) == sorted(record_id for ids in created for record_id in ids)
