"""The task queue.

``SqliteHuey`` keeps the queue in ``<var_dir>/queue.db`` (nothing to install); with
``CLOSELOOP_REDIS_URL`` set, ``RedisHuey`` lets workers on many machines share it. Tasks are
declared in :mod:`closeloop.worker.tasks` and run by ``closeloop worker`` (a Huey consumer).
"""

from __future__ import annotations

from functools import cache

from huey import Huey, RedisHuey, SqliteHuey

from closeloop.config import settings
from closeloop.db.session import Database, connect


def make_huey(
    *, redis_url: str | None = None, sqlite_path: str | None = None, immediate: bool = False, name: str | None = None
) -> Huey:
    redis_url = redis_url if redis_url is not None else settings.redis_url
    name = name or settings.queue_name
    if redis_url:
        return RedisHuey(name, url=redis_url, immediate=immediate)
    path = sqlite_path or str(settings.var_dir / "queue.db")
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=path, immediate=immediate)


huey: Huey = make_huey()


@cache
def worker_database() -> Database:
    """The database the worker's tasks use (one pool per worker process)."""
    return connect(settings.effective_database_url, app_role=settings.database_app_role)
