"""Fixtures of the demo tests: one seeded demo per test module and backend, and snapshots of its rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from closeloop.config import settings
from closeloop.db.engine import normalize_url
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.demo import bulk
from closeloop.demo.seed import DemoResult, seed_demo
from tests.conftest import Backend, _empty


@pytest.fixture(scope="module")
def demo(backend: Backend) -> Iterator[DemoResult]:
    """The demo seeded (committed) once for the module; the database is emptied afterwards.

    Tests that use it only read, so seeding once keeps the suite fast.
    """
    result = seed_demo(backend.database)
    if backend.is_postgres:
        analyze_as_owner(backend)
    yield result
    _empty(backend)


def analyze_as_owner(backend: Backend) -> None:
    """What autovacuum does within a minute of a bulk load (the application role may not analyze)."""
    owner = create_engine(normalize_url(backend.url), isolation_level="AUTOCOMMIT")
    with owner.connect() as connection:
        connection.execute(text("ANALYZE"))
    owner.dispose()


@pytest.fixture
def cli(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose commands open the test database (tests using it must be ``committing``)."""
    monkeypatch.setattr(settings, "database_url", backend.url)
    return CliRunner()


#: columns that differ between two seedings by design (argon2 salts each hash)
UNCOMPARED = {"password_hash"}


def fingerprint(database: Database, organization_ids: Sequence[int]) -> dict[str, tuple[int, str]]:
    """``{table: (rows, sha256)}`` of the organizations' demo rows, with ids made relative (the first
    id of each table is 1 and organizations are numbered in the order given) so that two databases
    can be compared whatever ids they handed out before."""
    with database.reading(None, system=True) as session:
        rows = {name: _rows(session, name, organization_ids) for name in bulk.TABLES}
    first = {name: min((row[0] for row in found), default=1) for name, found in rows.items() if name in bulk.IDENTIFIED}
    result = {}
    for name, found in rows.items():
        shifts = _shifts(name, first, organization_ids)
        digest = hashlib.sha256()
        for row in found:
            digest.update(
                repr([_plain(shift(value)) for shift, value in zip(shifts, row, strict=True) if shift]).encode()
            )
        result[name] = (len(found), digest.hexdigest())
    return result


def _plain(value: Any) -> Any:
    """JSON documents with their keys sorted: PostgreSQL's JSONB reorders keys, SQLite keeps them."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, dict | list) else value


def _rows(session: Any, name: str, organization_ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The table's rows, ``id`` first, in id order (composite keys: in key order)."""
    model = bulk.MODELS[name]
    table = model.__table__
    columns = sorted(table.columns, key=lambda column: (column.name != "id", column.name))
    order = list(table.primary_key.columns)
    found: list[tuple[Any, ...]] = []
    for organization_id in organization_ids:
        statement = select(*columns).where(tenant_clause(organization_id, model, include_deleted=True))
        found.extend(tuple(row) for row in session.execute(statement.order_by(*order)))
    return found


def _shifts(name: str, first: dict[str, int], organization_ids: Sequence[int]) -> list[Any]:
    """Per column (in :func:`_rows`' order), how to make its value comparable; ``None`` leaves it out."""
    references = bulk.REFERENCES[name]
    table = bulk.MODELS[name].__table__
    shifts: list[Any] = []
    for column in sorted(table.columns, key=lambda column: (column.name != "id", column.name)):
        target = name if column.name == "id" else references.get(column.name)
        if column.name in UNCOMPARED or (column.name == "id" and name not in first):
            shifts.append(None)  # hashed salts; ids the database numbered (row order says it already)
        elif column.name == "organization_id":
            shifts.append(organization_ids.index)
        elif target in first:
            offset = first[target] - 1
            shifts.append(lambda value, offset=offset: None if value is None else value - offset)
        else:
            shifts.append(lambda value: value)
    return shifts
