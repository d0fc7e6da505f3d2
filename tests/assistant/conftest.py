"""Fixtures of the assistant tests."""

from tests.apps import client

__all__ = ["client"]
