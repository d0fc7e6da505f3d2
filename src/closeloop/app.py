"""Composition root: the web workspace and the API in one ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from closeloop import __version__
from closeloop.api.app import create_api
from closeloop.api.deps import TokenCache
from closeloop.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from closeloop.config import Settings, settings
from closeloop.db.session import Database, connect
from closeloop.web import routes as web_routes


def create_app(database: Database | None = None, *, config: Settings | None = None) -> FastAPI:
    """Build the application. Without a ``database``, it connects to the configured URL at start-up."""
    config = config or settings
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.database is None:
            attach(connect(config.effective_database_url, app_role=config.database_app_role))
            from closeloop.worker.tasks import register_automation

            register_automation()  # committed events wake the worker
        yield
        if owns_database and app.state.database is not None:
            app.state.database.dispose()

    app = FastAPI(
        title="Closeloop", version=__version__, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    api = create_api()

    def attach(connected: Database | None) -> None:
        app.state.database = api.state.database = connected

    attach(database)
    app.state.token_cache = api.state.token_cache = TokenCache(config.token_cache_seconds)
    app.mount("/api", api)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    web_routes.install(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=config.effective_secret_key,
        session_cookie="closeloop_session",
        same_site="lax",
        https_only=config.https_only,
        max_age=12 * 3600,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        limit=config.max_body_bytes,
        upload_limit=config.max_upload_bytes,
        upload_prefixes=("/api/v1/imports", "/imports", "/api/v1/fieldwork", "/fieldwork"),
    )
    app.add_middleware(RequestIdMiddleware)

    return app
