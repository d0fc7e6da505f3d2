"""Background work on Huey: SQLite-backed by default, Redis-backed when ``CLOSELOOP_REDIS_URL`` is set."""
