"""The composition root hands ``/api/…`` to the API before the web application's router: the
shared middlewares still run on every API request (request id, body limit, the session cookie a
signed-in browser calls the API with), errors are still problem+json, and a proxy's root path
still works."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.api.test_account_security import PASSWORD, _csrf, give_password
from tests.apps import app_for
from tests.conftest import Backend
from tests.factories import Tenant
from tests.samples import assert_problem


def test_an_api_request_gets_a_request_id_and_problems_name_it(client: TestClient, tenant: Tenant) -> None:
    found = client.get("/api/v1/opportunities/1", headers={**tenant["rep"].headers, "X-Request-ID": "disp-1"})
    unknown_route = client.get("/api/v1/no-such-things", headers=tenant["rep"].headers)

    assert_problem(found, 404)
    assert found.headers["x-request-id"] == "disp-1"
    assert found.json()["request_id"] == "disp-1"
    assert unknown_route.status_code == 404
    assert len(unknown_route.headers["x-request-id"]) == 32


def test_an_oversized_api_body_is_refused_before_the_api_reads_it(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/accounts",
        content=b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}',
        headers={**tenant["rep"].headers, "Content-Type": "application/json"},
    )

    assert_problem(response, 413)


def test_a_signed_in_browser_calls_the_api_with_its_session_cookie(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = tenant["rep"]
    give_password(db, rep)
    client.post(
        "/login", data={"username": rep.username, "password": PASSWORD, "csrf": _csrf(client.get("/login").text)}
    )

    me = client.get("/api/v1/users/me")
    write_without_csrf = client.post("/api/v1/accounts", json={"name": "无令牌医院"})

    assert me.status_code == 200, me.text
    assert me.json()["username"] == rep.username
    assert_problem(write_without_csrf, 403)


def test_the_api_answers_under_a_proxy_root_path(backend: Backend, db: Database, tenant: Tenant) -> None:
    with TestClient(app_for(backend, db), root_path="/crm", raise_server_exceptions=False) as proxied:
        me = proxied.get("/crm/api/v1/users/me", headers=tenant["rep"].headers)
        page = proxied.get("/crm/login")

    assert me.status_code == 200, me.text
    assert me.json()["username"] == tenant["rep"].username
    assert page.status_code == 200
