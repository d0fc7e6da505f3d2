"""Alembic environment: the URL comes from ``-x url=…``, the caller's connection, or Closeloop's settings."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.exc import SAWarning

from closeloop.all_models import metadata
from closeloop.config import settings
from closeloop.db.engine import build_engine, is_sqlite, normalize_url

config = context.config


def _url() -> str:
    return normalize_url(context.get_x_argument(as_dictionary=True).get("url") or settings.effective_database_url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include,
    )


#: indexes the product builds at run time, not the migrations: custom fields marked indexed
#: (closeloop.crm.customfields.INDEX_PREFIX)
RUNTIME_INDEX_PREFIX = "cfx_"
# SQLite's reflection cannot read an expression index and says so; ours are left alone anyway
warnings.filterwarnings(
    "ignore",
    message=f"Skipped unsupported reflection of expression-based index {RUNTIME_INDEX_PREFIX}",
    category=SAWarning,
)


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Tables that Alembic did not create (Huey's queue, pgvector's helpers…) are not ours to drop.
    if type_ == "index" and (name or "").startswith(RUNTIME_INDEX_PREFIX):
        return False
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = _url()
    engine = build_engine(url, immediate=is_sqlite(url))
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
