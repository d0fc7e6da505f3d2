"""Setting another user's password on the users page (a reset): the service's rules hold — a role
one may grant, a password long enough and not common — the user's sessions and tokens end, the
audit trail says the password changed (never what it is), and the new one signs in."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from tests.factories import Tenant
from tests.web.pages import browse_as
from tests.web.test_settings_pages import csrf_of
from tests.web.test_sign_in import ENGLISH

NEW_PASSWORD = "violet lantern harbour 7"


def test_an_administrator_sets_a_reps_password(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = tenant["rep"]
    csrf = browse_as(client, db, tenant["admin"])
    page = client.get(f"/settings/users/{rep.user_id}", headers=ENGLISH)
    assert 'id="user-password-reset"' in page.text

    short = client.post(
        f"/settings/users/{rep.user_id}/password", data={"csrf": csrf, "password": "short"}, headers=ENGLISH
    )
    assert short.status_code == 422
    assert 'id="user-password-error"' in short.text
    assert "at least 8 characters" in short.text

    done = client.post(
        f"/settings/users/{rep.user_id}/password",
        data={"csrf": csrf, "password": NEW_PASSWORD},
        headers=ENGLISH,
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert "Password set" in client.get(done.headers["location"], headers=ENGLISH).text
    # the rep's token ended with the reset; the new password signs in
    assert client.get("/api/v1/accounts", headers=rep.headers).status_code == 401
    client.cookies.clear()
    token = csrf_of(client.get("/login", headers=ENGLISH).text)
    signed_in = client.post(
        "/login", data={"username": rep.username, "password": NEW_PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    with db.reading(None, system=True) as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(
                    tenant_clause(tenant.organization_id, AuditEntry),
                    AuditEntry.action == "user.updated",
                    AuditEntry.subject_id == rep.user_id,
                )
            )
        )
    assert any("password" in (entry.changes or {}) for entry in entries)
    assert not any(NEW_PASSWORD in str(entry.changes) for entry in entries)


def test_an_it_director_cannot_reset_a_cfos_password(client: TestClient, db: Database, tenant: Tenant) -> None:
    csrf = browse_as(client, db, tenant["it_director"])
    cfo = tenant["cfo"]

    refused = client.post(
        f"/settings/users/{cfo.user_id}/password", data={"csrf": csrf, "password": NEW_PASSWORD}, headers=ENGLISH
    )

    assert refused.status_code == 403
    assert 'id="user-password-error"' in refused.text
    assert client.get("/api/v1/accounts", headers=cfo.headers).status_code == 200


def test_password_refusals_are_in_the_readers_language_and_ones_own_is_said(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = tenant["rep"]
    csrf = browse_as(client, db, tenant["admin"])
    client.get("/language/zh_CN")
    short = client.post(f"/settings/users/{rep.user_id}/password", data={"csrf": csrf, "password": "short"})
    named = client.post(
        f"/settings/users/{rep.user_id}/password", data={"csrf": csrf, "password": f"{rep.username}-2026"}
    )
    own = client.post(
        f"/settings/users/{tenant['admin'].user_id}/password", data={"csrf": csrf, "password": NEW_PASSWORD}
    )

    assert short.status_code == 422
    assert "至少需要 8 个字符" in short.text
    assert "不能包含用户名" in named.text
    assert own.status_code == 422
    assert "请在您的个人设置页面修改自己的密码" in own.text
