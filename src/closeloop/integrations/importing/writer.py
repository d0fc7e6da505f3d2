"""Set-based writes for imports: ids allocated up front, rows inserted and updated with one
``executemany`` per table (or per set of changed columns), through the columns' own type
conversions so that what is stored is exactly what the ORM would store.

Statements are built from the tables' own (quoted) names, never from input; values are bound.
These bypass the ORM's unit of work on purpose: a 10,000-row import is a handful of statements
instead of 10,000 flushes. Callers keep the rules (validation, scoping, audit) — see ``engine``.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson
from psycopg import errors as psycopg_errors
from psycopg import generators as psycopg_generators
from psycopg import pq as psycopg_pq
from sqlalchemy import JSON, Connection, Table, event, func, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Converter = Callable[[Any], Any]


def dialect_of(session: Session) -> Dialect:
    return session.get_bind().dialect


def lock_for_import(session: Session, organization_id: int, entity: str) -> None:
    """Serialize imports of one entity in one organization until the transaction ends.

    On SQLite the write transaction already holds the database's write lock; on PostgreSQL a
    transaction-level advisory lock keeps two imports of the same file from both creating rows.
    """
    if dialect_of(session).name != "postgresql":
        return
    key = zlib.crc32(f"closeloop.import:{organization_id}:{entity}".encode()) - 2**31
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, reserved for this transaction.

    PostgreSQL draws them from the column's sequence. SQLite assigns ``max(id) + 1`` onwards, as
    it would itself: the write transaction holds the database lock, so no one else can take them.
    (This reads only the largest id of the table — no tenant's rows.)
    """
    if count <= 0:
        return []
    if dialect_of(session).name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": count},
        )
        return sorted(int(row[0]) for row in rows)
    start = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(start + 1, start + 1 + count))


def _memoized(convert: Converter) -> Converter:
    """Convert repeated identical objects (a batch's shared timestamp) once."""
    last: list[Any] = [object(), None]

    def memo(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    return memo


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def converters(table: Table, columns: Sequence[str], dialect: Dialect) -> list[Converter | None]:
    """Each column's bind conversion (money to cents, datetimes to UTC, JSON to text…), or ``None``."""
    result: list[Converter | None] = []
    for name in columns:
        column_type = table.c[name].type
        implementation = column_type.dialect_impl(dialect)
        if isinstance(implementation, JSON):
            result.append(_memoized(_json_text))  # the same document SQLAlchemy would store, written faster
            continue
        processor = implementation.bind_processor(dialect)
        # shared values (the import's one timestamp, an empty custom-fields document) convert once
        result.append(None if processor is None else _memoized(processor))
    return result


def parameters(
    table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], dialect: Dialect
) -> list[tuple[Any, ...]]:
    """Each row's values in ``columns`` order, converted for the driver."""
    pick = itemgetter(*columns)
    convert = [(index, conv) for index, conv in enumerate(converters(table, columns, dialect)) if conv is not None]
    params: list[tuple[Any, ...]] = []
    append = params.append
    for row in rows:
        values = pick(row)
        values = list(values) if len(columns) > 1 else [values]
        for index, conv in convert:
            value = values[index]
            if value is not None:
                values[index] = conv(value)
        append(tuple(values))
    return params


def _placeholder(dialect: Dialect) -> str:
    return "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"


#: rows from which PostgreSQL inserts go through ``COPY`` into a temporary table (below: executemany)
COPY_MIN_ROWS = 200
_copies = itertools.count(1)


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    dialect = dialect_of(session)
    columns = list(rows[0])
    params = parameters(table, columns, rows, dialect)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    if dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        _copy_rows(session, quote(table.name), names, params)
        return
    marker = _placeholder(dialect)
    one = "(" + ", ".join([marker] * len(columns)) + ")"
    # one executemany: psycopg pipelines it; sqlite3 reuses one prepared statement. Measured faster
    # than multi-row VALUES statements and than INSERT … SELECT FROM unnest(arrays) on PostgreSQL.
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES {one}"  # noqa: S608
    session.connection().exec_driver_sql(sql, params)


def _copy_rows(session: Session, table: str, names: str, params: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``COPY`` the rows into a temporary table of the same columns, then one
    ``INSERT … SELECT`` into ``table`` — about twice as fast as an executemany of many rows.

    ``COPY`` cannot write into a table with row-level security; the ``INSERT`` checks every row
    against the policies (and constraints, triggers) as an executemany would. The temporary table
    is dropped at once (and at the transaction's end in any case); a failure rolls back with the
    caller's transaction. Inside :func:`overlapped`, the ``INSERT … SELECT`` is sent and not waited
    for: the server moves the rows while the caller prepares the next table's.
    """
    temporary = f"closeloop_copy_{next(_copies)}"
    connection = session.connection()
    settle(connection)
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {temporary} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {temporary} ({names}) FROM STDIN") as copy:
            write_row = copy.write_row
            for row in params:
                write_row(row)
    finally:
        cursor.close()
    move = f"INSERT INTO {table} ({names}) SELECT {names} FROM {temporary}"  # noqa: S608
    sent_on: list[Connection] | None = session.info.get(_OVERLAP)
    if sent_on is not None:
        _send(connection, f"{move}; DROP TABLE {temporary}")
        if connection not in sent_on:
            sent_on.append(connection)
        return
    connection.exec_driver_sql(move)
    connection.exec_driver_sql(f"DROP TABLE {temporary}")


# --- PostgreSQL: a bulk write the server runs while Python prepares the next ------------------

_OVERLAP = "closeloop.import.overlap"
_PENDING = "closeloop.import.pending"


@dataclass(slots=True)
class _Pending:
    """A statement sent on a connection whose results have not been read yet."""

    statement: str
    driver: Any


@contextmanager
def overlapped(session: Session) -> Iterator[None]:
    """Within the block, a bulk write on PostgreSQL returns once its rows are on the server, before
    the server has moved them into the table; the next statement on the connection (any statement,
    a commit or a rollback) first waits for it and raises its error, if any. Everything stays on
    the one connection, in the one transaction. On leaving the block, the last write is waited for.
    """
    if session.info.get(_OVERLAP) is not None:
        yield
        return
    connections: list[Connection] = []  # where writes were sent (the session's one connection)
    session.info[_OVERLAP] = connections
    try:
        yield
    except BaseException:
        session.info.pop(_OVERLAP, None)
        for connection in connections:  # not session.connection(): the session may refuse after an error
            settle(connection, raising=False)
        raise
    session.info.pop(_OVERLAP, None)
    for connection in connections:
        settle(connection)


def _send(connection: Connection, statement: str) -> None:
    """Send ``statement`` (simple-query protocol: several statements allowed) without waiting."""
    driver = connection.connection.driver_connection
    pgconn = driver.pgconn  # type: ignore[union-attr]
    pgconn.send_query(statement.encode(driver.info.encoding))  # type: ignore[union-attr]
    driver.wait(psycopg_generators.send(pgconn))  # type: ignore[union-attr]
    connection.info[_PENDING] = _Pending(statement, driver)
    if not event.contains(connection, "before_cursor_execute", _settle_before_execute):
        # kept for the connection's life (one transaction): removing a listener while it runs is unsafe
        event.listen(connection, "before_cursor_execute", _settle_before_execute)
        event.listen(connection, "commit", _settle_before_end)
        event.listen(connection, "rollback", _settle_before_rollback)


def settle(connection: Connection, *, raising: bool = True) -> None:
    """Wait for the statement :func:`overlapped` left running on ``connection``, if any, and raise
    its error as SQLAlchemy would have (``raising=False``: only wait, the transaction is failing)."""
    pending: _Pending | None = connection.info.pop(_PENDING, None)
    if pending is None:
        return
    driver = pending.driver
    try:
        results = driver.wait(psycopg_generators.fetch_many(driver.pgconn))
    except psycopg_errors.Error:
        if raising:
            raise
        return  # the connection is broken; the rollback under way reports it
    failed = [result for result in results if result.status == psycopg_pq.ExecStatus.FATAL_ERROR]
    if failed and raising:
        error = psycopg_errors.error_from_result(failed[0], encoding=driver.info.encoding)
        raise DBAPIError.instance(pending.statement, None, error, psycopg_errors.Error) from error


def _settle_before_execute(connection: Connection, *_: Any) -> None:
    settle(connection)


def _settle_before_end(connection: Connection) -> None:
    settle(connection)


def _settle_before_rollback(connection: Connection) -> None:
    settle(connection, raising=False)


def update_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    versioned: bool = True,
) -> int:
    """``UPDATE … SET columns, version = version + 1 WHERE id = :id AND version = :version`` per row.

    Each row holds ``id``, ``version`` (the version read when the import was planned) and the new
    values of ``columns``. Returns how many rows matched; fewer than given means someone changed
    a record meanwhile (the caller rolls back). ``versioned=False`` completes rows this same
    transaction inserted (no version check, no bump).
    """
    if not rows:
        return 0
    dialect = dialect_of(session)
    quote = dialect.identifier_preparer.quote
    marker = _placeholder(dialect)
    assignments = ", ".join(f"{quote(name)} = {marker}" for name in columns)
    versioned = versioned and "version" in table.c
    sql = f"UPDATE {quote(table.name)} SET {assignments}"  # noqa: S608
    if versioned:
        sql += f", {quote('version')} = {quote('version')} + 1"
    sql += f" WHERE {quote('id')} = {marker}"
    if versioned:
        sql += f" AND {quote('version')} = {marker}"
    params = parameters(table, [*columns, "id", *(["version"] if versioned else [])], rows, dialect)
    result = session.connection().exec_driver_sql(sql, params)
    return int(result.rowcount)
