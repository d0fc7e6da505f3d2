"""Custom-field indexes are built at run time, outside Alembic: ``alembic check`` ignores them
(by their ``cfx_`` prefix) and a downgrade removes them before it drops what they read."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from closeloop.crm import customfields
from closeloop.db.engine import normalize_url
from closeloop.db.migrate import check, downgrade, upgrade
from tests.db.test_migrations import fresh_url

pytestmark = pytest.mark.slow

__all__ = ["fresh_url"]


def test_runtime_indexes_leave_alembic_check_clean(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = create_engine(normalize_url(fresh_url))
    with engine.begin() as connection:
        customfields.apply_index(connection, "accounts", 41, "tier", "VARCHAR", wanted=True)
        customfields.apply_index(connection, "opportunities", 42, "score", "FLOAT", wanted=True)
    with engine.connect() as connection:
        assert customfields.index_names(connection) == {"cfx_accounts_41", "cfx_opportunities_42"}

    check(fresh_url)  # raises if Alembic wanted to drop them

    downgrade(fresh_url, "875ef5d77729")
    with engine.connect() as connection:
        assert customfields.index_names(connection) == set()
    engine.dispose()
    upgrade(fresh_url)
    check(fresh_url)
