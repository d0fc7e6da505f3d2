"""Streaming millions of rows into one tenant: batched ``executemany`` on SQLite, ``COPY`` on PostgreSQL
(into a temporary table, then ``INSERT … SELECT``, because row-level security refuses a direct ``COPY``).

Rows are tuples already in the database's storage form (money in cents, timestamps as text), so no
per-value conversion runs in SQLAlchemy. Each batch is its own transaction, opened for the
tenant's system actor, so PostgreSQL's row-level security checks every row. Batches are written
by one background thread, in the order they were handed over, while the caller generates the
next ones (``sqlite3`` and psycopg release the GIL while the database works). On SQLite the
loading connection runs with ``synchronous=OFF``, a large page cache and sorter threads (an
operating-system crash mid-load can lose the load, not the data before it: WAL keeps the file
consistent).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.db.session import Database
from closeloop.demo.bulk import reserve_ids, table

if TYPE_CHECKING:
    import psycopg

#: (table, rows written so far, rows expected or None, rows per second of this table so far)
Progress = Callable[[str, int, int | None, float], None]

BATCH_ROWS = 50_000


class Timeline:
    """Whole seconds since ``origin`` (midnight UTC) as the text each database stores for a timestamp."""

    def __init__(self, origin: datetime, days: int, *, dialect: str) -> None:
        if origin.tzinfo is None or origin != origin.replace(hour=0, minute=0, second=0, microsecond=0):
            raise ValueError("the origin must be an aware midnight")
        self.origin = origin.astimezone(UTC)
        self._days = [(self.origin.date() + timedelta(days=day)).isoformat() for day in range(days + 1)]
        #: SQLite stores naive UTC text; PostgreSQL parses the text as timestamptz, so it needs the offset
        suffix = ".000000+00" if dialect == "postgresql" else ".000000"
        #: " HH:MM:SS.ffffff" for every second of a day (a table lookup beats formatting millions of times)
        self._times = [
            f" {hour:02d}:{minute:02d}:{second:02d}{suffix}"
            for hour in range(24)
            for minute in range(60)
            for second in range(60)
        ]

    def seconds(self, moment: datetime) -> int:
        return int((moment - self.origin).total_seconds())

    def stamp(self, seconds: int) -> str:
        return self._days[seconds // 86_400] + self._times[seconds % 86_400]

    def date(self, seconds: int) -> str:
        return self._days[seconds // 86_400]

    def year(self, seconds: int) -> str:
        return self._days[seconds // 86_400][:4]


class IdSource:
    """Primary keys for one table, handed out one by one and reserved from the database in blocks."""

    def __init__(self, loader: Loader, table: str, block: int = BATCH_ROWS) -> None:
        self.loader = loader
        self.table = table
        self.block = block
        self._ids: Sequence[int] = ()
        self._next = 0

    def take(self) -> int:
        if self._next >= len(self._ids):
            self._ids = self.loader.reserve(self.table, self.block)
            self._next = 0
        value = self._ids[self._next]
        self._next += 1
        return value


class TableWriter:
    """Collects rows of one table and hands them to the loader a batch at a time; the rows of its
    ``parents`` (writers of the tables it references) go first, so foreign keys always resolve."""

    def __init__(
        self,
        loader: Loader,
        table: str,
        columns: Sequence[str],
        expected: int | None = None,
        parents: Sequence[TableWriter] = (),
    ) -> None:
        self.loader = loader
        self.table = table
        self.columns = tuple(columns)
        self.expected = expected
        self.parents = tuple(parents)
        self.written = 0
        self._rows: list[tuple[Any, ...]] = []
        self._started = time.perf_counter()

    def add(self, row: tuple[Any, ...]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.loader.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        for parent in self.parents:
            parent.flush()
        self.written += len(self._rows)
        self.loader.write(self.table, self.columns, self._rows, self._report(self.written))
        self._rows = []

    def close(self) -> int:
        self.flush()
        return self.written

    def _report(self, written: int) -> Callable[[], None]:
        def report() -> None:
            if self.loader.progress is not None:
                elapsed = max(time.perf_counter() - self._started, 1e-9)
                self.loader.progress(self.table, written, self.expected, written / elapsed)

        return report


_Batch = tuple[str, tuple[str, ...], list[tuple[Any, ...]], Callable[[], None]]


class Loader:
    """Writes batches for one tenant's actor on a background thread. Use as a context manager; leaving
    it waits for every batch and raises the first error a batch met."""

    def __init__(self, db: Database, actor: Actor, *, progress: Progress | None = None, batch_rows: int = BATCH_ROWS):
        self.db = db
        self.actor = actor
        self.progress = progress
        self.batch_rows = batch_rows
        self.dialect = db.dialect
        self._connection: Connection | None = None
        self._id_counters: dict[str, int] = {}
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="demo-loader", daemon=True)

    def __enter__(self) -> Loader:
        if self.dialect == "sqlite":
            self._connection = self.db.write_engine.connect()
            raw = self._connection.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute("PRAGMA cache_size=-1048576")
            raw.execute("PRAGMA threads=4")  # helper threads for the sorts that build indexes
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._connection is not None:
            raw = self._connection.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA cache_size=-65536")
            raw.execute("PRAGMA threads=0")
            self._connection.close()
            self._connection = None
        if kind is None:
            self._raise_failure()

    def write(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], done: Callable[[], None]
    ) -> None:
        """Queue a batch (waits while two batches are already waiting); ``done`` runs once it is written."""
        self._raise_failure()
        self._queue.put((table, columns, rows, done))

    def drain(self) -> None:
        """Wait until every queued batch is written."""
        self._queue.join()
        self._raise_failure()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A committed unit of work for the tenant (on SQLite, on the tuned loading connection).
        Only the writer thread uses it while batches are queued: call :meth:`drain` first."""
        extra: dict[str, Any] = {"bind": self._connection} if self._connection is not None else {}
        with self.db.unit_of_work(self.actor, **extra) as session:
            yield session

    @contextmanager
    def indexes_suspended(self, tables: Sequence[str]) -> Iterator[None]:
        """On SQLite, drop the non-unique indexes of ``tables`` for the load and build them again after
        it, also when it fails: building an index once, sorted, is several times faster than keeping
        it up to date row by row. The indexes are the models' own (what the migrations create), so a
        load that was killed outright is repaired by the next one. Unique indexes stay and keep checking."""
        if self.dialect != "sqlite":
            yield
            return
        indexes = [index for name in tables for index in table(name).indexes if not index.unique]
        self.drain()
        with self.session() as session:
            for index in indexes:
                index.drop(session.connection(), checkfirst=True)
        try:
            yield
        finally:
            self._queue.join()
            started = time.perf_counter()
            for number, index in enumerate(indexes, start=1):
                with self.session() as session:
                    index.create(session.connection(), checkfirst=True)
                if self.progress is not None:
                    self.progress("indexes", number, len(indexes), number / (time.perf_counter() - started))

    def reserve(self, table: str, count: int) -> Sequence[int]:
        """``count`` primary keys for ``table``. On SQLite the loader is the only writer, so after
        the first look at ``max(id)`` it counts on; PostgreSQL draws from the sequence."""
        if self.dialect == "sqlite" and table in self._id_counters:
            start = self._id_counters[table]
            self._id_counters[table] = start + count
            return range(start, start + count)
        self.drain()
        with self.session() as session:
            reserved = reserve_ids(session, table, count)
        if self.dialect == "sqlite" and reserved:
            self._id_counters[table] = reserved[-1] + 1
        return reserved

    def link(self, table: str, column: str, pairs: Sequence[tuple[int, int]]) -> None:
        """Set ``column`` of the rows of ``table`` by id from ``(id, value)`` pairs (foreign keys to rows
        written after them)."""
        self.drain()
        for start in range(0, len(pairs), self.batch_rows):
            batch = pairs[start : start + self.batch_rows]
            with self.session() as session:
                connection = session.connection()
                if self.dialect == "postgresql":
                    connection.execute(
                        text("CREATE TEMP TABLE demo_links (id bigint PRIMARY KEY, value bigint) ON COMMIT DROP")
                    )
                    with _psycopg(connection).cursor() as cursor, cursor.copy("COPY demo_links FROM STDIN") as copy:
                        for pair in batch:
                            copy.write_row(pair)
                    statement = f"UPDATE {table} SET {column} = l.value FROM demo_links l WHERE {table}.id = l.id"  # noqa: S608
                    connection.execute(text(statement))
                else:
                    statement = f"UPDATE {table} SET {column} = ? WHERE id = ?"  # noqa: S608 - our constants
                    connection.exec_driver_sql(statement, [(value, row_id) for row_id, value in batch])

    def _work(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                if self._failure is None:
                    table, columns, rows, done = batch
                    self._write_now(table, columns, rows)
                    done()
            except BaseException as error:  # handed to the caller's thread by _raise_failure
                self._failure = error
            finally:
                self._queue.task_done()

    def _write_now(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        column_list = ", ".join(columns)
        with self.session() as session:
            connection = session.connection()
            if self.dialect == "postgresql":
                # PostgreSQL refuses COPY into a table under row-level security: copy into a temporary
                # table, then INSERT … SELECT, which the tenant wall checks row by row.
                empty = f"SELECT {column_list} FROM {table} WITH NO DATA"  # noqa: S608 - our constants
                connection.execute(text(f"CREATE TEMP TABLE demo_load ON COMMIT DROP AS {empty}"))
                with (
                    _psycopg(connection).cursor() as cursor,
                    cursor.copy(f"COPY demo_load ({column_list}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                move = f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM demo_load"  # noqa: S608
                connection.execute(text(move))
            else:
                placeholders = ", ".join("?" for _ in columns)
                statement = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"  # noqa: S608 - our constants
                connection.exec_driver_sql(statement, rows)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


def _psycopg(connection: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection (for ``COPY``)."""
    return cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
