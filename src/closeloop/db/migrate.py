"""Run the Alembic migrations programmatically (``closeloop migrate``, ``make run``, tests)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from closeloop.db.engine import normalize_url

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    ini = ROOT / "alembic.ini"
    if not ini.exists():
        raise RuntimeError(f"alembic.ini not found at {ini}; run Closeloop from its source checkout (make install)")
    config = Config(str(ini))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.cmd_opts = None
    config.attributes["url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    config = alembic_config(url)
    _with_url(config, url)
    command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    config = alembic_config(url)
    _with_url(config, url)
    command.downgrade(config, revision)


def check(url: str) -> None:
    """Raise if the models and the migrated schema differ (``alembic check``)."""
    config = alembic_config(url)
    _with_url(config, url)
    command.check(config)


def _with_url(config: Config, url: str) -> None:
    # env.py reads ``-x url=...``; give it the same through the x arguments
    import argparse

    config.cmd_opts = argparse.Namespace(x=[f"url={normalize_url(url)}"])


@functools.cache
def heads() -> tuple[str, ...]:
    """The code's migration heads (read from the scripts once per process)."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


def state(connection: Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The revisions the database is at and the revisions the code has (heads): equal when migrated."""
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(connection).get_current_heads()
    return tuple(sorted(current)), heads()
