"""Signing in any member of a tenant for page tests."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Member
from tests.web.test_sign_in import ENGLISH, PASSWORD, csrf_of


def browse_as(client: TestClient, db: Database, member: Member) -> str:
    """Give ``member`` a password, sign in through the form; the session's CSRF token."""
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    client.cookies.clear()
    token = csrf_of(client.get("/login", headers=ENGLISH).text)
    response = client.post(
        "/login", data={"username": member.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/", headers=ENGLISH).text)
