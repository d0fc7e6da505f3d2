"""Tenants with one user per role, their tokens, and API clients (a pytest plugin)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.app import create_app
from closeloop.config import Settings
from closeloop.core.actor import Actor
from closeloop.db.session import Database
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import OrganizationKind, User

SELLER_ROLES = (Role.REP, Role.MANAGER, Role.DIRECTOR, Role.SALES_VP, Role.CFO, Role.IT_DIRECTOR, Role.ADMIN)


@dataclass
class Member:
    user_id: int
    username: str
    role: Role
    token: str
    actor: Actor

    @property
    def headers(self) -> dict[str, str]:
        """The member's token, asking for English words in problem documents (the language the
        tests' assertions are written in; without it the API answers in the user's or the
        organization's language — see tests/api/test_problem_language.py)."""
        return {"Authorization": f"Bearer {self.token}", "Accept-Language": "en"}


@dataclass
class Tenant:
    organization_id: int
    name: str
    region_id: int
    members: dict[str, Member] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Member:
        return self.members[key]


def make_tenant(
    database: Database,
    name: str | None = None,
    *,
    kind: OrganizationKind = OrganizationKind.SELLER,
    partner_of_id: int | None = None,
    password: str | None = None,
) -> Tenant:
    """An organization with a region and a reporting line: director ← manager ← rep, rep2; plus the
    sales VP, CFO, IT director and admin. Partner organizations get one partner user."""
    suffix = uuid.uuid4().hex[:8]
    name = name or f"Org {suffix}"
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(
            session, name=name, kind=kind, partner_of_id=partner_of_id, slug=f"{org_service.slugify(name)}-{suffix}"
        )
        system = org_service.system_actor(organization.id)
        region = org_service.ensure_region(session, system, name=f"华东 {suffix}")
        specs: list[tuple[str, Role, str | None]]
        if kind is OrganizationKind.SELLER:
            specs = [
                ("director", Role.DIRECTOR, None),
                ("manager", Role.MANAGER, "director"),
                ("rep", Role.REP, "manager"),
                ("rep2", Role.REP, "manager"),
                ("sales_vp", Role.SALES_VP, None),
                ("cfo", Role.CFO, None),
                ("it_director", Role.IT_DIRECTOR, None),
                ("admin", Role.ADMIN, None),
            ]
        else:
            specs = [("partner_user", Role.PARTNER_USER, None)]
        users: dict[str, User] = {}
        for key, role, manager in specs:
            users[key] = org_service.create_user(
                session,
                system,
                data=org_service.NewUser(
                    username=f"{key}-{suffix}",
                    display_name=f"{key.title()} {suffix}",
                    role=role,
                    password=password,
                    manager_id=users[manager].id if manager else None,
                    region_id=region.id,
                ),
            )
        secrets = {}
        for key, user in users.items():
            _, secrets[key] = org_service.issue_token(session, system, user=user, name="test")
        tenant = Tenant(organization.id, name, region.id)
        for key, user in users.items():
            tenant.members[key] = Member(
                user.id, user.username, Role(user.role), secrets[key], org_service.actor_for(session, user)
            )
    return tenant


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return make_tenant(db)


@pytest.fixture
def other_tenant(db: Database) -> Tenant:
    return make_tenant(db)


@pytest.fixture
def partner(db: Database, tenant: Tenant) -> Tenant:
    return make_tenant(db, kind=OrganizationKind.DEALER, partner_of_id=tenant.organization_id)


def test_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"secret_key": "test-secret", "token_cache_seconds": 0.0}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(database=db, config=test_settings())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
