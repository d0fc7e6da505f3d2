"""Signing in and out of the web workspace, and CSRF on every state-changing browser request."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Member, Tenant
from tests.samples import Api

PASSWORD = "correct horse battery"
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def member(db: Database, tenant: Tenant) -> Member:
    """The rep, with a password (stored directly: a password change through the service would end
    the rep's factory token, which some tests below use beside the browser session)."""
    rep = tenant["rep"]
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, rep.user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    return rep


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, member: Member) -> str:
    """Sign in through the form; the session's CSRF token."""
    token = csrf_of(client.get("/login", headers=ENGLISH).text)
    response = client.post(
        "/login", data={"username": member.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/", headers=ENGLISH).text)


def test_the_sign_in_page_carries_a_csrf_token(client: TestClient) -> None:
    response = client.get("/login", headers=ENGLISH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert len(csrf_of(response.text)) >= 32
    assert "Sign in" in response.text


def test_home_sends_a_stranger_to_sign_in(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


def test_a_sign_in_without_the_csrf_token_is_refused(client: TestClient, member: Member) -> None:
    client.get("/login")

    response = client.post("/login", data={"username": member.username, "password": PASSWORD})

    assert response.status_code == 400
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_wrong_password_is_refused_without_a_session(client: TestClient, member: Member) -> None:
    token = csrf_of(client.get("/login", headers=ENGLISH).text)

    response = client.post(
        "/login",
        data={"username": member.username, "password": "wrong password", "csrf": token},
        headers=ENGLISH,
    )

    assert response.status_code == 401
    assert "Unknown username or wrong password." in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_signing_in_leads_home_to_the_funnel(client: TestClient, member: Member) -> None:
    Api(client, member).create("leads", {"name": "网页线索"})
    token = csrf_of(client.get("/login", headers=ENGLISH).text)

    response = client.post(
        "/login", data={"username": member.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    home = client.get("/", headers=ENGLISH)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert home.status_code == 200
    assert "The closed loop" in home.text
    assert '<div class="funnel-step" data-step="lead" data-count="1">' in home.text
    assert 'class="who"' in home.text
    assert "Sales rep" in home.text
    assert member.username.split("-")[0].title() in home.text


def test_signing_out_needs_the_csrf_token(client: TestClient, member: Member) -> None:
    token = sign_in(client, member)

    forged = client.post("/logout", data={}, follow_redirects=False)
    assert forged.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 200

    signed_out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_browser_session_needs_the_csrf_header_to_change_data(client: TestClient, member: Member) -> None:
    token = sign_in(client, member)

    listed = client.get("/api/v1/leads")
    forged = client.post("/api/v1/leads", json={"name": "跨站线索"})
    wrong = client.post("/api/v1/leads", json={"name": "跨站线索"}, headers={"X-CSRF-Token": "not-the-token"})
    genuine = client.post("/api/v1/leads", json={"name": "本站线索"}, headers={"X-CSRF-Token": token})

    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert forged.status_code == 403
    assert forged.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 403
    assert genuine.status_code == 201
    assert genuine.json()["owner_id"] is None  # a new lead waits in the inbox
    assert [lead["name"] for lead in client.get("/api/v1/leads").json()["items"]] == ["本站线索"]


@pytest.mark.parametrize(
    ("asked", "landing"),
    [("/notifications", "/notifications"), ("//evil.example/x", "/"), ("https://evil.example/", "/")],
)
def test_signing_in_returns_to_the_page_asked_for_and_only_on_this_site(
    client: TestClient, member: Member, asked: str, landing: str
) -> None:
    page = client.get("/login", params={"next": asked}, headers=ENGLISH).text
    response = client.post(
        "/login",
        data={"username": member.username, "password": PASSWORD, "csrf": csrf_of(page), "next": asked},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == landing


def test_a_page_fragment_asks_htmx_to_sign_in_again(client: TestClient) -> None:
    response = client.get("/notifications", headers={"HX-Request": "true"}, follow_redirects=False)

    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/notifications"
