"""Test fixtures: every test that touches the database runs on SQLite, and again on PostgreSQL when
``CLOSELOOP_TEST_POSTGRES_URL`` is set. Each test runs in a transaction that is rolled back; tests
marked ``committing`` get a database that really commits and is emptied afterwards."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("CLOSELOOP_SECRET_KEY", "test-secret-key-not-for-production")
# the CLI prints tables with rich: the same width in every process (xdist workers have no terminal)
os.environ.setdefault("COLUMNS", "200")
# each pytest-xdist worker gets its own var dir (queue file, uploads): workers never share state
os.environ.setdefault(
    "CLOSELOOP_VAR_DIR",
    str(Path(__file__).parent / ".." / "var" / "test" / os.environ.get("PYTEST_XDIST_WORKER", "main")),
)

from closeloop.db.engine import normalize_url
from closeloop.db.migrate import upgrade
from closeloop.db.security import APP_ROLE
from closeloop.db.session import Database, connect

# Tests assert behaviour, never wall-clock time: hypothesis's per-example deadline (200 ms) is a
# timing assertion, and on a loaded two-core CI machine it failed a correct pinyin test at 349 ms.
hypothesis_settings.register_profile("closeloop", deadline=None)
hypothesis_settings.load_profile("closeloop")

POSTGRES_URL = os.environ.get("CLOSELOOP_TEST_POSTGRES_URL")


def shared_data(name: str) -> Path:
    """A real data set from the shared folder: ``$CLOSELOOP_SHARED_DATA``, else ``../shared/data`` next
    to the checkout, else the workplace's ``/work/shared/data`` (a clone may live anywhere)."""
    candidates = [
        *([Path(os.environ["CLOSELOOP_SHARED_DATA"])] if os.environ.get("CLOSELOOP_SHARED_DATA") else []),
        Path(__file__).resolve().parents[2] / "shared" / "data",
        Path("/work/shared/data"),
    ]
    for base in candidates:
        if (base / name).is_dir():
            return base / name
    return candidates[0] / name


REDIS_URL = os.environ.get("CLOSELOOP_TEST_REDIS_URL")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]

pytest_plugins = ["tests.factories"]


class Backend:
    """One migrated test database: its URL, the app's :class:`Database`, and an owner engine for cleanup."""

    def __init__(self, name: str, url: str, template: Path | None = None) -> None:
        self.name = name
        self.url = url
        self.template = template
        self.database = connect(url, app_role=APP_ROLE)

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


def _create_postgres_database(base_url: str) -> tuple[str, str]:
    name = f"closeloop_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(normalize_url(base_url)).set(database=name).render_as_string(hide_password=False)
    return name, url


def _drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(normalize_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("sqlite")
        template = directory / "template.db"
        upgrade(f"sqlite:///{template}")
        url = f"sqlite:///{directory / 'test.db'}"
        shutil.copy(template, directory / "test.db")
        item = Backend("sqlite", url, template)
        yield item
        item.database.dispose()
        return
    assert POSTGRES_URL is not None
    name, url = _create_postgres_database(POSTGRES_URL)
    try:
        upgrade(url)
        item = Backend("postgres", url)
        yield item
        item.database.dispose()
    finally:
        _drop_postgres_database(POSTGRES_URL, name)


@pytest.fixture
def db(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database for one test: everything it writes is rolled back at the end."""
    if request.node.get_closest_marker("committing"):
        yield backend.database
        _empty(backend)
        return
    connection = backend.database.write_engine.connect()
    transaction = connection.begin()
    try:
        yield Database.bound_to(connection)
    finally:
        transaction.rollback()
        connection.close()


def _empty(backend: Backend) -> None:
    """Remove every row a committing test left (as the owner: past row security and the audit triggers)."""
    from closeloop.all_models import metadata

    backend.database.dispose()
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    if backend.is_postgres:
        owner = create_engine(normalize_url(backend.url))
        with owner.begin() as connection:
            connection.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        owner.dispose()
        return
    database_path = Path(make_url(backend.url).database or "")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database_path}{suffix}").unlink(missing_ok=True)
    assert backend.template is not None
    shutil.copy(backend.template, database_path)


@pytest.fixture(autouse=True)
def _fresh_sign_in_throttle() -> Iterator[None]:
    """Every test starts with no failed sign-ins counted (the throttle lives in the process)."""
    from closeloop.org.throttle import throttle

    throttle.reset()
    yield
    throttle.reset()
