"""Engines for SQLite (embedded) and PostgreSQL, configured the same way everywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


#: a run of 19 digits or more: a number orjson would read as a float (beyond 64 bits) may be in it
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def json_loads(text: str | bytes) -> Any:
    """JSON columns as Python values: orjson (several times faster than ``json.loads``, and a list
    page parses a document per row), except where it would read differently from ``json.loads``,
    which then reads it: what orjson refuses (``NaN``, lone surrogates …) and text holding a run of
    19 digits or more (orjson reads integers beyond 64 bits as floats, the standard module exactly).
    Every stored document therefore reads as it did."""
    long_number = _LONG_NUMBER.search(text) if isinstance(text, str) else _LONG_NUMBER_BYTES.search(text)
    if long_number is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def build_engine(url: str, *, immediate: bool = False, app_role: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine.

    SQLite: WAL journal, foreign keys on, a busy timeout, and transactions begun by us so that a
    writer can take the write lock up front (``immediate``) instead of failing on upgrade.
    PostgreSQL: when ``app_role`` is given and the login role is a superuser, every connection
    switches to ``app_role`` so that row-level security applies to the application.
    """
    url = normalize_url(url)
    kwargs.setdefault("json_deserializer", json_loads)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=QueuePool,
            pool_size=kwargs.pop("pool_size", 8),
            max_overflow=kwargs.pop("max_overflow", 16),
            **kwargs,
        )
        _configure_sqlite(engine, immediate=immediate)
        return engine
    engine = create_engine(
        url,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        pool_pre_ping=True,
        **kwargs,
    )
    if app_role:
        _switch_role_on_connect(engine, app_role)
    return engine


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below): pysqlite's implicit transactions would begin late and
        # deferred, which makes a reader that later writes fail with SQLITE_BUSY under load.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # straight to the driver: every request begins a transaction, and this one statement
        # needs none of the execution machinery (no parameters, no result, no cursor events)
        connection.connection.driver_connection.execute(begin)


def _switch_role_on_connect(engine: Engine, role: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.rolsuper OR r.rolbypassrls, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) "
                "FROM pg_roles r WHERE r.rolname = current_user",
                (role,),
            )
            row = cursor.fetchone()
            if row and row[0] and row[1]:
                cursor.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()
