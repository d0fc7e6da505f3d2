"""Who may grant what, how a password change ends sessions, sign-in throttling, and the caches that
must never let one kind of credential stand for another."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from closeloop.api.deps import TokenCache
from closeloop.api.problems import integrity_problem
from closeloop.core.actor import Actor, ActorKind, RowScope
from closeloop.db.session import Database
from closeloop.governance.fields import DEFAULTS, FIELD_RULES
from closeloop.governance.grants import GOVERNING, can_grant
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role
from closeloop.org.models import User
from closeloop.org.passwords import hash_password, password_problem
from closeloop.org.throttle import MAX_FAILURES_PER_USERNAME
from tests.factories import Member, Tenant
from tests.samples import Api, assert_problem, tag

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple orbit lantern"


def give_password(db: Database, member: Member, password: str = PASSWORD) -> None:
    """Store a password directly (as an operator's reset would, but without ending the factory token)."""
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.password_hash = hash_password(password)


def token_for(client: TestClient, member: Member, password: str = PASSWORD) -> dict[str, str]:
    issued = client.post("/api/v1/auth/token", json={"username": member.username, "password": password})
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


# --- granting roles ------------------------------------------------------------------------------


def _actor_of(role: Role) -> Actor:
    return Actor(
        organization_id=1,
        role=role.value,
        kind=ActorKind.USER,
        label=role.value,
        permissions=ROLE_PERMISSIONS[role],
        scope=RowScope.ALL,
        user_id=1,
    )


@pytest.mark.parametrize(("grantor", "role"), list(itertools.product(Role, Role)))
def test_nobody_grants_a_role_that_sees_or_governs_more_than_they_do(grantor: Role, role: Role) -> None:
    granted = can_grant(None, _actor_of(grantor), role)

    sees_no_more = all(
        DEFAULTS.masked(grantor.value, noun) <= DEFAULTS.masked(role.value, noun) for noun in FIELD_RULES
    )
    governs_no_more = ROLE_PERMISSIONS[role] & GOVERNING <= ROLE_PERMISSIONS[grantor]
    assert granted is (sees_no_more and governs_no_more)


def test_the_it_director_adds_reps_but_cannot_make_a_cfo(client: TestClient, tenant: Tenant) -> None:
    it = Api(client, tenant["it_director"])

    rep = it.request("POST", "/users", json={"username": f"rep-{tag()}", "display_name": "新销售", "role": "rep"})
    cfo = it.request("POST", "/users", json={"username": f"cfo-{tag()}", "display_name": "新财务", "role": "cfo"})
    promoted = it.patch("users", tenant["rep"].user_id, {"role": "cfo"})

    assert rep.status_code == 201, rep.text
    assert_problem(cfo, 403, field="role")
    assert_problem(promoted, 403, field="role")
    assert Api(client, tenant["admin"]).read("users", tenant["rep"].user_id)["role"] == "rep"


def test_a_role_one_cannot_grant_one_cannot_take_away(client: TestClient, tenant: Tenant) -> None:
    it = Api(client, tenant["it_director"])
    admin = Api(client, tenant["admin"])

    demoted = it.patch("users", tenant["cfo"].user_id, {"role": "rep"})
    deactivated = it.patch("users", tenant["cfo"].user_id, {"is_active": False})
    renamed = it.patch("users", tenant["cfo"].user_id, {"display_name": "财务总监"})
    rep_promoted = it.patch("users", tenant["rep"].user_id, {"role": "manager"})

    assert_problem(demoted, 403, field="role")
    assert "cannot take away the role cfo" in demoted.json()["detail"]
    assert_problem(deactivated, 403, field="is_active")
    assert renamed.status_code == 200, renamed.text  # a change that takes no role away stays open
    assert rep_promoted.status_code == 200, rep_promoted.text
    cfo = admin.read("users", tenant["cfo"].user_id)
    assert (cfo["role"], cfo["is_active"]) == ("cfo", True)


def test_nobody_takes_over_an_account_above_their_own(client: TestClient, tenant: Tenant) -> None:
    it = Api(client, tenant["it_director"])

    reset_cfo = it.patch("users", tenant["cfo"].user_id, {"password": NEW_PASSWORD})
    reset_rep = it.patch("users", tenant["rep"].user_id, {"password": NEW_PASSWORD})
    own_role = Api(client, tenant["admin"]).patch("users", tenant["admin"].user_id, {"role": "rep"})

    assert_problem(reset_cfo, 403, field="password")
    assert reset_rep.status_code == 200, reset_rep.text
    assert_problem(own_role, 422, field="role")


# --- passwords and sessions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least"),
        ("password123", "too easy"),
        ("aaaaaaaaaaaa", "too easy"),
        ("my-name-is-rep-x1", "username"),
        ("a perfectly fine passphrase", None),
    ],
)
def test_a_password_must_be_hard_to_guess(password: str, problem: str | None) -> None:
    found = password_problem(password, username="rep-x1")

    assert (found is None) if problem is None else (found is not None and problem in found)


def test_changing_your_password_needs_the_current_one_and_ends_your_tokens(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = tenant["rep"]
    give_password(db, rep)
    scripted = token_for(client, rep)
    me = Api(client, rep)

    without = me.patch("users", rep.user_id, {"password": NEW_PASSWORD})
    wrong = me.patch("users", rep.user_id, {"password": NEW_PASSWORD, "current_password": "not it at all"})
    weak = me.patch("users", rep.user_id, {"password": "12345678", "current_password": PASSWORD})
    assert_problem(without, 422, field="current_password")
    assert_problem(wrong, 422, field="current_password")
    assert_problem(weak, 422, field="password")
    assert client.get("/api/v1/users/me", headers=scripted).status_code == 200

    changed = me.patch("users", rep.user_id, {"password": NEW_PASSWORD, "current_password": PASSWORD})

    assert changed.status_code == 200, changed.text
    assert_problem(client.get("/api/v1/users/me", headers=scripted), 401)
    assert_problem(client.get("/api/v1/users/me", headers=rep.headers), 401)
    assert client.get("/api/v1/users/me", headers=token_for(client, rep, NEW_PASSWORD)).status_code == 200


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_a_password_reset_ends_the_browser_session_too(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = tenant["rep"]
    give_password(db, rep)
    token = _csrf(client.get("/login").text)
    signed_in = client.post(
        "/login", data={"username": rep.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    cookie = client.cookies.get("closeloop_session")
    assert cookie

    reset = Api(client, tenant["it_director"]).patch("users", rep.user_id, {"password": NEW_PASSWORD})

    assert reset.status_code == 200, reset.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert_problem(client.get("/api/v1/users/me"), 401)
    client.cookies.clear()
    client.cookies.set("closeloop_session", cookie)  # a copy of the cookie is ended as well
    assert client.get("/", follow_redirects=False).status_code == 303


# --- throttling ----------------------------------------------------------------------------------


def test_too_many_wrong_passwords_lock_the_username_for_a_while(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = tenant["rep"]
    give_password(db, rep)
    for _ in range(MAX_FAILURES_PER_USERNAME):
        wrong = client.post("/api/v1/auth/token", json={"username": rep.username, "password": "guess guess"})
        assert_problem(wrong, 401)

    right = client.post("/api/v1/auth/token", json={"username": rep.username, "password": PASSWORD})
    page = client.post(
        "/login", data={"username": rep.username, "password": PASSWORD, "csrf": _csrf(client.get("/login").text)}
    )

    assert_problem(right, 429)
    assert page.status_code == 429
    give_password(db, tenant["rep2"])
    assert token_for(client, tenant["rep2"])  # other users of the same address still sign in


def test_a_sign_in_is_in_the_audit_trail(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = tenant["rep"]
    give_password(db, rep)
    token_for(client, rep)

    items = Api(client, tenant["admin"]).request("GET", "/audit", params={"action": "user.signed_in"}).json()["items"]

    assert [(item["subject_id"], item["changes"]["via"][1]) for item in items] == [(rep.user_id, "api")]


# --- caches and constraints ----------------------------------------------------------------------


def test_a_cached_browser_session_never_answers_for_a_bearer_token(tenant: Tenant) -> None:
    cache = TokenCache(60)
    rep = tenant["rep"].actor
    cache.put_session(rep.user_id or 0, 1, rep)

    assert cache.session(rep.user_id or 0, 1) is rep
    for guess in (f"session-user:{rep.user_id}", f"session:{rep.user_id}:1", f"{rep.user_id}:1"):
        assert cache.token(guess) is None
    assert cache.session(rep.user_id or 0, 2) is None  # a bumped session version misses

    cache.forget_user(rep.user_id or 0)
    assert cache.session(rep.user_id or 0, 1) is None


def test_a_bearer_that_is_not_a_closeloop_token_is_refused(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer session-user:{tenant['rep'].user_id}"})

    assert_problem(response, 401)


@pytest.mark.committing
def test_a_duplicate_the_database_refuses_names_its_field(db: Database, tenant: Tenant) -> None:
    with db.unit_of_work(None, system=True) as session:
        duplicate = User(
            organization_id=tenant.organization_id, username=tenant["rep"].username, display_name="x", role="rep"
        )
        session.add(duplicate)
        with pytest.raises(IntegrityError) as raised:
            session.flush()
        session.rollback()

    detail, problems = integrity_problem(raised.value)

    assert [(p.field, p.code) for p in problems] == [("username", "duplicate")]
    assert "username" in detail


def test_a_lead_you_cannot_see_is_not_found_even_when_it_has_a_referrer(client: TestClient, tenant: Tenant) -> None:
    manager, rep = Api(client, tenant["manager"]), Api(client, tenant["rep"])
    hidden = manager.create("leads", {"name": "别人的线索", "owner_id": tenant["rep2"].user_id})
    referrer = manager.create("accounts", {"name": "老客户医院", "owner_id": tenant["rep"].user_id})
    manager.create("referrals", {"referrer_account_id": referrer["id"], "lead_id": hidden["id"]})

    attempt = rep.request("POST", "/referrals", json={"referrer_account_id": referrer["id"], "lead_id": hidden["id"]})

    assert_problem(attempt, 422, field="lead_id", code="not_found")


def test_an_unknown_filter_does_not_name_a_field_masked_for_the_caller(client: TestClient, tenant: Tenant) -> None:
    def error(member: str) -> str:
        response = client.get("/api/v1/accounts", params={"owner": "25"}, headers=tenant[member].headers)
        assert response.status_code == 422, response.text
        return str(response.text)

    assert "credit_line" not in error("rep")
    assert "industry" in error("rep")  # the filters the rep may use are still listed
    assert "credit_line" in error("cfo")
