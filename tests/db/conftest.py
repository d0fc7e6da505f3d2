"""Fixtures of the db tests."""

from tests.apps import client

__all__ = ["client"]
