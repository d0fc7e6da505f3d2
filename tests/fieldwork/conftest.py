"""Field work tests share the application (tests.apps)."""

from tests.apps import client

__all__ = ["client"]
