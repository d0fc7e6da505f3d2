"""Units of work: a session bound to an actor's organization, committed by whoever opened it.

Side effects registered with :func:`after_commit` run only once the transaction has committed,
and are dropped on rollback (STYLE.md habit 6).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Enum,
    Executable,
    Integer,
    Result,
    String,
    TypeDecorator,
    any_,
    bindparam,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from closeloop.core.actor import Actor
from closeloop.core.errors import PreconditionFailed

_AFTER_COMMIT = "closeloop.after_commit"

T = TypeVar("T")


class ReadSession(Session):
    """A session for reads only; on SQLite it begins deferred, so readers never queue behind writers."""


class WriteSession(Session):
    """A session that writes; on SQLite it takes the write lock when it begins."""


def commit(session: Session) -> None:
    """Commit, turning a lost optimistic-concurrency race into *precondition failed* (412)."""
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        raise PreconditionFailed() from None


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the session's transaction commits; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def execute_core(session: Session, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Result[Any]:
    """Run a Core statement (columns, not ORM entities) on the session's connection, in its
    transaction — what ``session.execute`` does for such a statement, without the ORM's
    per-statement machinery (the hot read paths run this several times per request).
    Pending ORM changes are flushed first, as ``session.execute`` would (unless autoflush is off)."""
    if session.autoflush and (session.new or session.deleted or session.identity_map):
        session.flush()
    return session.connection().execute(statement, parameters)


def ids_in(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN (ids)`` for a batch of ids. On PostgreSQL it is ``column = ANY(:ids)`` with one
    array parameter: the statement's text is the same whatever the count, so neither SQLAlchemy nor
    the driver re-renders and re-parses a list of hundreds of parameters on every batch."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger))))
    return cast(ColumnElement[bool], column.in_(list(ids)))


def in_bound(session: Session, column: Any, name: str) -> ColumnElement[bool]:
    """``column IN (:name)`` for a list bound when the statement runs (``{name: values}``).

    On PostgreSQL it is ``column = ANY(:name)`` with one array parameter, for columns whose values
    the driver sends as they are (text, integers): the statement's text does not grow with the
    list, so neither SQLAlchemy nor the driver renders and parses thousands of placeholders, and
    one statement takes any number of values (:func:`bound_chunks`). Elsewhere an expanding
    parameter (one placeholder per value; callers chunk the values)."""
    if session.get_bind().dialect.name == "postgresql" and _plain_type(column.type) is not None:
        return cast(ColumnElement[bool], column == any_(bindparam(name, type_=ARRAY(_plain_type(column.type)))))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


def _plain_type(column_type: Any) -> Any:
    """``column_type`` when its values go to the driver as they are (text, integers), else ``None``."""
    if isinstance(column_type, Enum | TypeDecorator) or not isinstance(column_type, String | Integer):
        return None
    return column_type


def bound_chunks(session: Session, column: Any, values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``values`` in lists to bind to :func:`in_bound`'s parameter: all at once where it is an
    array, else ``size`` at a time (under the databases' parameter limits)."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql" and _plain_type(column.type) is not None:
        yield values
        return
    for start in range(0, len(values), size):
        yield values[start : start + size]


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


@event.listens_for(Session, "after_begin")
def _set_tenant(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    """Tell PostgreSQL whose rows this transaction may touch (the row-level security wall)."""
    if connection.dialect.name != "postgresql":
        return
    organization_id = session.info.get("organization_id")
    system = "on" if session.info.get("system") else "off"
    # straight to the driver (every transaction runs it, and it needs no result processing)
    driver = connection.connection.driver_connection
    assert driver is not None  # a connection that has begun a transaction holds its driver's connection
    driver.execute(
        "SELECT set_config('closeloop.organization_id', %(org)s, true), set_config('closeloop.system', %(sys)s, true)",
        {"org": "" if organization_id is None else str(organization_id), "sys": system},
    )


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, write_engine: Engine, read_engine: Engine | None = None) -> None:
        self.write_engine = write_engine
        self.read_engine = read_engine or write_engine
        self._write = sessionmaker(write_engine, class_=WriteSession, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, class_=ReadSession, expire_on_commit=False)
        #: each thread's read session for :meth:`read` (a session between transactions holds no connection)
        self._kept_readers = threading.local()

    @classmethod
    def bound_to(cls, connection: Connection) -> Database:
        """A database whose sessions all run inside ``connection``'s open transaction, each in a
        savepoint: what a session commits, the outer transaction can still roll back (tests)."""
        database = cls(connection.engine)
        options: dict[str, Any] = {
            "bind": connection,
            "join_transaction_mode": "create_savepoint",
            "expire_on_commit": False,
        }
        database._write = sessionmaker(class_=WriteSession, **options)
        database._read = sessionmaker(class_=ReadSession, **options)
        return database

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    def open(self, actor: Actor | None, *, write: bool, system: bool = False, **kw: Any) -> Session:
        """Open a session for ``actor`` (or the system when ``system`` is true). The caller commits."""
        if actor is None and not system:
            raise ValueError("a session needs an actor, or system=True")
        factory = self._write if write else self._read
        session = factory(**kw)
        session.info["organization_id"] = actor.organization_id if actor else None
        session.info["system"] = system
        session.info["actor"] = actor
        return session

    @contextmanager
    def unit_of_work(self, actor: Actor | None, *, system: bool = False, **options: Any) -> Iterator[Session]:
        """A write session committed when the block ends without error, rolled back otherwise.

        A lost optimistic-concurrency race at commit becomes :class:`PreconditionFailed`.
        ``options`` go to the session (e.g. ``bind`` to run on a particular connection).
        """
        session = self.open(actor, write=True, system=system, **options)
        try:
            yield session
            commit(session)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def writing(self, actor: Actor | None, *, system: bool = False) -> Iterator[Session]:
        """A write session the block commits itself (with :func:`commit`); rolled back if it does not."""
        session = self.open(actor, write=True, system=system)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def reading(self, actor: Actor | None, *, system: bool = False) -> Iterator[Session]:
        """A read session, rolled back at the end of the block. What it loaded stays readable
        afterwards (detached as it was read, not expired by the rollback)."""
        session = self.open(actor, write=False, system=system)
        try:
            yield session
        finally:
            session.expunge_all()
            session.rollback()
            session.close()

    def read(self, actor: Actor, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a read session for ``actor``, rolled back afterwards: what
        ``with database.reading(actor) as session: return work(session)`` does, for the hottest
        reads (the API's get and list). The session object is kept per thread and reused, emptied
        between reads (its identity map, its ``info``; its transaction ended, its connection back
        in the pool), instead of built and closed for every request. A session whose clean-up
        failed is closed and not reused."""
        kept = self._kept_readers
        if getattr(kept, "busy", False):  # a read inside a read: its own session, the kept one is in use
            with self.reading(actor) as own:
                return work(own)
        session: Session | None = getattr(kept, "session", None)
        if session is None:
            session = kept.session = self._read()
        kept.busy = True
        info = session.info
        info["organization_id"] = actor.organization_id
        info["system"] = False
        info["actor"] = actor
        try:
            return work(session)
        finally:
            try:
                session.expunge_all()
                session.rollback()
                info.clear()
            except BaseException:
                kept.session = None
                session.close()
                raise
            finally:
                kept.busy = False

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def connect(url: str, *, app_role: str | None = None, **engine_options: Any) -> Database:
    """Open a :class:`Database` for ``url``: on SQLite a deferred reader pool and an immediate writer pool."""
    from closeloop.db.engine import build_engine, is_sqlite

    if is_sqlite(url):
        writer = build_engine(url, immediate=True, **engine_options)
        reader = build_engine(url, immediate=False, **engine_options)
        return Database(writer, reader)
    return Database(build_engine(url, app_role=app_role, **engine_options))
