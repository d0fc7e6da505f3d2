"""Fixtures of the api tests."""

from tests.apps import client

__all__ = ["client"]
