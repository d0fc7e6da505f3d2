"""Fixtures of the governance tests."""

from tests.apps import client

__all__ = ["client"]
