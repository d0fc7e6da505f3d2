"""Fixtures of the CLI tests: commands run in-process against the test database (committing)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from closeloop.config import settings
from tests.apps import client
from tests.conftest import Backend

__all__ = ["cli", "client"]


@pytest.fixture
def cli(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose commands open the test database (tests using it must be ``committing``)."""
    monkeypatch.setattr(settings, "database_url", backend.url)
    return CliRunner()
