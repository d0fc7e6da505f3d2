"""The importer's PostgreSQL writes that the server runs while Python prepares the next table
(``writer.overlapped``), and list lookups bound as one array (``db.session.in_bound``): whatever
runs next on the connection waits for the write and sees its rows, a failed write fails the
transaction and leaves nothing, and the lookups find what ``IN`` finds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database, bound_chunks, in_bound
from closeloop.governance.audit.models import AuditEntry
from closeloop.integrations.importing import writer
from tests.factories import Tenant
from tests.integrations.test_engine import ACCOUNT_HEADER, account_rows, audit_count, count, import_rows, verify


def _accounts(organization_id: int, names: list[str], ids: list[int] | None = None) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            **({"id": ids[index]} if ids is not None else {}),
            "organization_id": organization_id,
            "name": name,
            "currency": "CNY",
            "custom": {},
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for index, name in enumerate(names)
    ]


def _postgres_only(db: Database, tenant: Tenant) -> None:
    with db.reading(tenant["manager"].actor) as session:
        if writer.dialect_of(session).name != "postgresql":
            pytest.skip("overlapped writes are PostgreSQL's (SQLite writes in this process)")


def test_a_statement_after_an_overlapped_write_sees_its_rows(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(db, tenant)
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session, writer.overlapped(session):
        writer.insert_rows(session, Account.__table__, _accounts(tenant.organization_id, ["甲", "乙", "丙"]))  # type: ignore[arg-type]
        # an ORM read, a Core read and a second bulk write, each right after the one before
        assert (
            session.scalar(select(func.count()).select_from(Account).where(Account.name.in_(["甲", "乙", "丙"]))) == 3
        )
        writer.insert_rows(session, Account.__table__, _accounts(tenant.organization_id, ["丁"]))  # type: ignore[arg-type]
        assert session.connection().exec_driver_sql("SELECT count(*) FROM accounts WHERE name = '丁'").scalar() == 1
        writer.insert_rows(session, Account.__table__, _accounts(tenant.organization_id, ["戊"]))  # type: ignore[arg-type]
    # left running at the block's end: waited for there, then committed
    with db.reading(manager) as session:
        assert session.scalar(select(func.count()).select_from(Account).where(Account.name == "戊")) == 1


@pytest.mark.parametrize("noticed_by", ["next statement", "end of the block"])
def test_an_overlapped_write_that_fails_fails_the_transaction_and_leaves_nothing(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, noticed_by: str
) -> None:
    _postgres_only(db, tenant)
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    with db.unit_of_work(manager) as session:
        (taken,) = writer.allocate_ids(session, Account.__table__, 1)  # type: ignore[arg-type]
    before = count(db, manager, Account)
    rows = _accounts(tenant.organization_id, ["重复一", "重复二"], ids=[taken, taken])

    def write() -> None:
        with db.unit_of_work(manager) as session, writer.overlapped(session):
            writer.insert_rows(session, Account.__table__, rows)  # type: ignore[arg-type]
            if noticed_by == "next statement":
                session.execute(select(func.count()).select_from(AuditEntry))

    with pytest.raises(IntegrityError, match=r"(?i)duplicate key"):
        write()
    assert count(db, manager, Account) == before
    # the pooled connection is usable again (nothing left unread on it)
    report = import_rows(db, manager, "accounts", [ACCOUNT_HEADER, *account_rows(3, {})])
    assert (report.created, report.invalid) == (3, 0)


def test_an_import_whose_write_fails_on_the_server_leaves_no_rows_and_a_whole_chain(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table the import writes goes through the overlapped writer here (on SQLite: executemany)."""
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    import_rows(db, manager, "accounts", [ACCOUNT_HEADER, *account_rows(2, {})])
    entries_before = audit_count(db, manager)
    accounts_before = count(db, manager, Account)
    with db.reading(manager) as session:
        taken = session.scalar(select(func.max(Account.id)))
    monkeypatch.setattr(writer, "allocate_ids", lambda session, table, n: [taken] * n)

    with pytest.raises(IntegrityError):
        import_rows(db, manager, "accounts", [ACCOUNT_HEADER, *list(account_rows(40, {}))[2:]])

    assert count(db, manager, Account) == accounts_before
    assert audit_count(db, manager) == entries_before
    assert verify(db, tenant.organization_id) == []


def test_in_bound_finds_what_in_finds_over_any_number_of_values(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    names = [f"查找{index}" for index in range(12)]
    with db.unit_of_work(manager) as session:
        ids = writer.allocate_ids(session, Account.__table__, len(names))  # type: ignore[arg-type]
        writer.insert_rows(session, Account.__table__, _accounts(tenant.organization_id, names, ids))  # type: ignore[arg-type]
    wanted = [*names[::2], *(f"没有{index}" for index in range(6000)), 'it\'s "quoted"', "逗号,{括号}"]
    with db.reading(manager) as session:
        statement = select(Account.id, Account.name).where(
            tenant_clause(tenant.organization_id, Account), in_bound(session, Account.__table__.c.name, "names")
        )
        found = {
            name
            for chunk in bound_chunks(session, Account.__table__.c.name, wanted, 1000)
            for _, name in session.execute(statement, {"names": list(chunk)})
        }
        assert found == set(names[::2])
        postgres = writer.dialect_of(session).name == "postgresql"
        assert ("ANY" in str(statement.compile(session.get_bind()))) is postgres
        ids = sorted(session.scalars(select(Account.id).where(Account.name.in_(names))))
        by_id = select(Account.id).where(in_bound(session, Account.__table__.c.id, "ids"))
        chunks = list(bound_chunks(session, Account.__table__.c.id, ids[:5], 2))
        assert len(chunks) == (1 if postgres else 3)
        got = [found_id for chunk in chunks for found_id in session.scalars(by_id, {"ids": list(chunk)})]
        assert sorted(got) == ids[:5]
        # columns whose values are converted on the way (here: date-times to UTC) keep the expanding IN
        moments = in_bound(session, Account.__table__.c.created_at, "moments")
        assert "ANY" not in str(moments.compile(session.get_bind()))
        assert len(list(bound_chunks(session, Account.__table__.c.created_at, [1, 2, 3], 2))) == 2
        stamps = list(session.scalars(select(Account.created_at).where(Account.id == ids[0])))
        rows = session.execute(select(func.count()).select_from(Account).where(moments), {"moments": stamps})
        assert (rows.scalar() or 0) >= 1
