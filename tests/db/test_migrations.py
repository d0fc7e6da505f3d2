"""The migrations build exactly the models' schema, and can be undone and redone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from closeloop.db.engine import normalize_url
from closeloop.db.migrate import check, downgrade, upgrade
from tests.conftest import BACKENDS, POSTGRES_URL, _create_postgres_database, _drop_postgres_database

pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        return
    assert POSTGRES_URL is not None
    name, url = _create_postgres_database(POSTGRES_URL)
    try:
        yield url
    finally:
        _drop_postgres_database(POSTGRES_URL, name)


def table_names(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_a_fresh_database_matches_the_models_after_upgrade(fresh_url: str) -> None:
    upgrade(fresh_url)

    check(fresh_url)  # raises when the models and the migrated schema differ
    assert {"accounts", "audit_entries", "audit_heads", "organizations", "users"} <= table_names(fresh_url)


def test_downgrade_then_upgrade_rebuilds_the_same_schema(fresh_url: str) -> None:
    upgrade(fresh_url)
    tables = table_names(fresh_url)

    downgrade(fresh_url, "base")
    assert table_names(fresh_url) == set()
    upgrade(fresh_url)

    check(fresh_url)
    assert table_names(fresh_url) == tables
    engine = create_engine(normalize_url(fresh_url))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            triggers = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
            assert {"audit_entries_no_update", "audit_entries_no_delete"} <= set(triggers)
        else:
            secured = connection.execute(
                text("SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity")
            ).scalars()
            assert {"accounts", "audit_entries", "organizations"} <= set(secured)
    engine.dispose()
