"""Fixtures of the web tests."""

from tests.apps import client

__all__ = ["client"]
