"""Throwaway databases for the benchmarks: a migrated SQLite file, or a migrated PostgreSQL
database created on a server and dropped afterwards."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from closeloop.db.engine import normalize_url
from closeloop.db.migrate import upgrade


def fresh_sqlite(directory: Path) -> str:
    url = f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
    upgrade(url)
    return url


def fresh_postgres(server: str, created: list[str], *, prefix: str) -> str:
    """A new, migrated database on ``server`` (its name is appended to ``created``)."""
    name = f"closeloop_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    created.append(name)
    url = make_url(normalize_url(server)).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_postgres(server: str, names: list[str]) -> None:
    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
