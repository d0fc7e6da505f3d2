"""One application per test database, re-attached to each test's database.

Building the API's routes is the slow part of a first request (a quarter of a second); the
directories that hold many API tests override ``client`` with this one, which pays it once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from closeloop.api.app import Api
from closeloop.app import create_app
from closeloop.db.session import Database
from tests.conftest import Backend
from tests.factories import test_settings

_apps: dict[str, FastAPI] = {}


def app_for(backend: Backend, database: Database) -> FastAPI:
    """The backend's application, now serving ``database``."""
    app = _apps.get(backend.name)
    if app is None:
        app = _apps[backend.name] = create_app(database=database, config=test_settings())
    api = next(route.app for route in app.routes if isinstance(route, Mount) and isinstance(route.app, Api))
    for state in [app.state, api.state]:
        state.database = database
    app.state.token_cache.clear()
    return app


@pytest.fixture
def client(backend: Backend, db: Database) -> Iterator[TestClient]:
    with TestClient(app_for(backend, db), raise_server_exceptions=False) as test_client:
        yield test_client
