"""PostgreSQL's row-level security: a second wall behind the scope door, holding even raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.db.session import Database
from tests.conftest import Backend
from tests.factories import Tenant

COUNT_ACCOUNTS = text("SELECT count(*) FROM accounts")


@pytest.fixture(autouse=True)
def _postgres_only(backend: Backend) -> None:
    if not backend.is_postgres:
        pytest.skip("row-level security is PostgreSQL's; SQLite has only the scope door")


def add_accounts(db: Database, tenant: Tenant, *names: str) -> None:
    actor = tenant["admin"].actor
    with db.unit_of_work(actor) as session:
        for name in names:
            account_service.create_account(session, actor, data=AccountCreate(name=name))


def test_a_raw_select_sees_only_the_session_s_organization(db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    add_accounts(db, tenant, "甲医院", "乙医院")
    add_accounts(db, other_tenant, "丙医院")

    with db.reading(tenant["rep"].actor) as session:
        assert session.scalar(text("SELECT current_user")) == "closeloop_app"
        assert session.scalar(COUNT_ACCOUNTS) == 2
    with db.reading(other_tenant["rep"].actor) as session:
        assert session.scalar(COUNT_ACCOUNTS) == 1
    with db.reading(None, system=True) as session:
        assert session.scalar(COUNT_ACCOUNTS) == 3


def test_without_a_tenant_a_raw_select_sees_nothing(db: Database, tenant: Tenant) -> None:
    add_accounts(db, tenant, "甲医院")

    with db.reading(tenant["rep"].actor) as session:
        session.execute(text("SELECT set_config('closeloop.organization_id', '', true)"))
        assert session.scalar(COUNT_ACCOUNTS) == 0
        assert session.scalar(text("SELECT count(*) FROM organizations")) == 0


def test_a_row_for_another_organization_cannot_be_written(db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    insert = text(
        "INSERT INTO accounts (organization_id, name, currency, custom, version, created_at, updated_at) "
        "VALUES (:org, '越界医院', 'CNY', '{}', 1, now(), now())"
    )
    actor = tenant["admin"].actor

    with pytest.raises(DBAPIError, match="row-level security"), db.unit_of_work(actor) as session:
        session.execute(insert, {"org": other_tenant.organization_id})

    with db.reading(None, system=True) as session:
        assert session.scalar(COUNT_ACCOUNTS) == 0


@pytest.mark.committing
def test_a_connection_that_names_no_tenant_sees_no_committed_row(db: Database, tenant: Tenant) -> None:
    add_accounts(db, tenant, "甲医院", "乙医院")

    with db.write_engine.connect() as connection:
        assert connection.scalar(COUNT_ACCOUNTS) == 0
        assert connection.scalar(text("SELECT count(*) FROM users")) == 0
    with db.reading(tenant["rep"].actor) as session:
        assert session.scalar(COUNT_ACCOUNTS) == 2


def test_a_kept_read_session_walls_each_read_in_its_own_organization(
    db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    """``Database.read`` reuses one session per thread: each read still names its own tenant."""
    add_accounts(db, tenant, "甲医院", "乙医院")
    add_accounts(db, other_tenant, "丙医院")

    def seen(session: Session) -> tuple[str | None, int | None]:
        return session.scalar(text("SELECT current_user")), session.scalar(COUNT_ACCOUNTS)

    assert db.read(tenant["rep"].actor, seen) == ("closeloop_app", 2)
    assert db.read(other_tenant["rep"].actor, seen) == ("closeloop_app", 1)
    assert db.read(tenant["admin"].actor, seen) == ("closeloop_app", 2)
