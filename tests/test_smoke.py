from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Tenant


def test_create_and_read_account(client: TestClient, tenant: Tenant) -> None:
    rep = tenant["rep"]
    response = client.post(
        "/api/v1/accounts", json={"name": "北京协和医院", "tier": "A", "employees": 5000}, headers=rep.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "北京协和医院"
    assert body["size"] == "large"
    assert "credit_line" not in body
    fetched = client.get(f"/api/v1/accounts/{body['id']}", headers=rep.headers)
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
