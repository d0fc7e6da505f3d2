"""``db.rawread.KeptRead``: a kept statement run on the driver's cursor hands back what SQLAlchemy's
result would, in the session's transaction, seen by the cursor-execute listeners, its errors
SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.models import Account
from closeloop.db.rawread import KeptRead
from closeloop.db.session import Database, execute_core
from tests.factories import Tenant

_NAMES = ("id", "name", "created_at", "credit_line", "custom", "employees")

#: an expanding parameter (a list of owners), a fixed value (the name it skips), a required one
_STATEMENT = (
    select(Account.id, Account.name, Account.created_at, Account.credit_line, Account.custom, Account.employees)
    .where(
        Account.organization_id == bindparam("organization_id"),
        Account.owner_id.in_(bindparam("owner_ids", expanding=True)),
        Account.name != "跳过医院",
    )
    .order_by(Account.id)
)


def _accounts(db: Database, tenant: Tenant) -> dict[str, int]:
    vp = tenant["sales_vp"].actor
    made = {}
    with db.unit_of_work(vp) as session:
        for key, name, owner, credit_line, employees in [
            ("a", "存读医院甲", "rep", Decimal("1000.50"), 40),
            ("b", "存读医院乙", "rep2", None, None),
            ("skipped", "跳过医院", "rep", Decimal("0.01"), 1),
        ]:
            record = records.create(
                session,
                vp,
                account_service.ACCOUNTS,
                {"name": name, "credit_line": credit_line, "employees": employees, "owner_id": tenant[owner].user_id},
            )
            made[key] = record.id
    return made


def _through_sqlalchemy(session: Session, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(_NAMES, row, strict=True)) for row in execute_core(session, _STATEMENT, parameters).all()]


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engines = {db.write_engine, db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def test_a_kept_read_hands_back_what_sqlalchemy_does(db: Database, tenant: Tenant) -> None:
    made = _accounts(db, tenant)
    kept = KeptRead(_STATEMENT, _NAMES, {"employees": lambda value: None if value is None else value * 2})
    actor = tenant["admin"].actor
    for owners in ([tenant["rep"].user_id], [tenant["rep"].user_id, tenant["rep2"].user_id], [-1]):
        parameters = {"organization_id": tenant.organization_id, "owner_ids": owners}
        for _ in range(2):  # the first run finds the processors, the second uses them
            ours = db.read(actor, partial(kept.dicts, parameters=parameters))
            theirs = db.read(actor, partial(_through_sqlalchemy, parameters=parameters))
            for row in theirs:
                row["employees"] = None if row["employees"] is None else row["employees"] * 2
            assert ours == theirs
            assert [type(value) for row in ours for value in row.values()] == [
                type(value) for row in theirs for value in row.values()
            ]
    both = db.read(
        actor,
        lambda session: kept.dicts(
            session,
            {"organization_id": tenant.organization_id, "owner_ids": [tenant["rep"].user_id, tenant["rep2"].user_id]},
        ),
    )
    assert [row["id"] for row in both] == [made["a"], made["b"]]  # the fixed value skipped the third
    assert both[0]["credit_line"] == Decimal("1000.50")
    assert both[0]["employees"] == 80
    assert both[0]["created_at"].utcoffset() is not None


def test_a_kept_read_sees_what_its_session_wrote_and_is_seen_by_listeners(db: Database, tenant: Tenant) -> None:
    actor = tenant["admin"].actor
    kept = KeptRead(_STATEMENT, _NAMES)
    parameters = {"organization_id": tenant.organization_id, "owner_ids": [tenant["rep"].user_id]}
    with db.writing(actor) as session, _statements(db) as seen:
        records.create(
            session, actor, account_service.ACCOUNTS, {"name": "未提交医院", "owner_id": tenant["rep"].user_id}
        )
        rows = kept.dicts(session, parameters)  # flushed first, as session.execute would
    assert [row["name"] for row in rows] == ["未提交医院"]
    assert any("FROM accounts" in statement and "organization_id" in statement for statement in seen)


def test_a_drivers_error_is_sqlalchemys(db: Database, tenant: Tenant) -> None:
    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    kept = KeptRead(select(missing.c.id).where(missing.c.id == bindparam("id")), ("id",))
    with pytest.raises(DBAPIError):
        db.read(tenant["admin"].actor, lambda session: kept.dicts(session, {"id": 1}))
    assert (
        db.read(
            tenant["admin"].actor,
            lambda session: KeptRead(_STATEMENT, _NAMES).dicts(
                session, {"organization_id": tenant.organization_id, "owner_ids": [-1]}
            ),
        )
        == []
    )  # the next read runs as usual


def test_the_names_must_fit_the_columns() -> None:
    with pytest.raises(ValueError, match="must differ"):
        KeptRead(_STATEMENT, ("id", "id", "a", "b", "c", "d"))
