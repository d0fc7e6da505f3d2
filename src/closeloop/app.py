"""Composition root: the web workspace and the API in one ASGI application.

Every request passes the same three middlewares — the request id, the body limit and the session
cookie (a signed-in browser calls the API with it too). A request under ``/api/`` then goes straight
to the API application, which has its own error handling, exception rendering (problem+json) and
routing; only the rest goes through the web application's layers and its router. The API is still
mounted at ``/api`` (what the router and the tests see), it is only reached before the web router.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from closeloop import __version__
from closeloop.api.app import Api, create_api
from closeloop.api.deps import TokenCache
from closeloop.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from closeloop.config import Settings, settings
from closeloop.db import migrate
from closeloop.db.session import Database, connect
from closeloop.web import routes as web_routes

API_PREFIX = "/api"
log = logging.getLogger(__name__)


class _ApiFirst:
    """``/api/…`` straight to the API (as the mount would hand it over); everything else to the web
    application's full stack. Both behind the same middlewares, built from one list."""

    def __init__(self, web: ASGIApp, api: Api, middleware: list[Middleware]) -> None:
        self.web = web
        self.api = api
        stack: ASGIApp = api
        for cls, args, kwargs in reversed(middleware):
            stack = cls(stack, *args, **kwargs)
        self.api_stack = stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root_path: str = scope.get("root_path", "")
            path: str = scope["path"]
            route_path = path[len(root_path) :] if root_path and path.startswith(root_path) else path
            if route_path.startswith(API_PREFIX + "/"):
                # the child scope Starlette's Mount("/api") would make
                scope["app_root_path"] = scope.get("app_root_path", root_path)
                scope["root_path"] = root_path + API_PREFIX
                scope["path_params"] = {}
                await self.api_stack(scope, receive, send)
                return
        await self.web(scope, receive, send)


class _Root(FastAPI):
    """The composition root's application: its middleware stack dispatches the API first."""

    api: Api
    shared_middleware: list[Middleware]

    def build_middleware_stack(self) -> ASGIApp:
        return _ApiFirst(super().build_middleware_stack(), self.api, self.shared_middleware)


def _health_routes(app: FastAPI, config: Settings) -> None:
    """``/healthz``: the process answers (for a load balancer's liveness probe; touches nothing).
    ``/readyz``: it can serve — the database answers, its schema is at the code's migration head, and
    the task queue is reachable; 503 naming what is not, so a rolling deploy waits for ``migrate``."""

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        database: Database | None = app.state.database
        try:
            if database is None:
                raise RuntimeError("not connected yet")
            with database.reading(None, system=True) as session:
                connection = session.connection()
                connection.exec_driver_sql("SELECT 1")
                current, heads = migrate.state(connection)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if current == heads else "behind the code: run closeloop migrate"
            if current != heads:
                log.warning("readiness: the database is at %s, the code needs %s", current or "none", heads)
        except Exception as error:  # any failure to reach it is the answer, not a 500
            log.warning("readiness: the database check failed: %s", error, exc_info=True)
            checks["database"] = "unreachable (see the server log)"
        checks["queue"] = _queue_check(config)
        ready = all(value == "ok" for value in checks.values())
        body = {"status": "ready" if ready else "not ready", "version": __version__, "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)


def _queue_check(config: Settings) -> str:
    if not config.redis_url:
        return "ok"  # the SQLite queue lives beside the database, in the var directory
    import redis

    try:
        redis.Redis.from_url(config.redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as error:  # an unreachable broker is the answer
        log.warning("readiness: the queue check failed: %s", error)
        return "unreachable (see the server log)"
    return "ok"


def create_app(database: Database | None = None, *, config: Settings | None = None) -> FastAPI:
    """Build the application. Without a ``database``, it connects to the configured URL at start-up."""
    config = config or settings
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.database is None:
            config.protect_var_dir()
            attach(connect(config.effective_database_url, app_role=config.database_app_role))
            from closeloop.worker.tasks import register_automation

            register_automation()  # committed events wake the worker
            from closeloop.org.passwords import warm_up

            warm_up()  # the first sign-in of an unknown name takes as long as any other
        yield
        if owns_database and app.state.database is not None:
            app.state.database.dispose()

    app = _Root(
        title="Closeloop", version=__version__, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    api = create_api()
    app.api = api

    def attach(connected: Database | None) -> None:
        app.state.database = api.state.database = connected

    attach(database)
    app.state.token_cache = api.state.token_cache = TokenCache(config.token_cache_seconds)
    app.mount("/api", api)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    _health_routes(app, config)
    web_routes.install(app)
    # outermost first, as a request meets them; the web stack and the API's path share this list
    app.shared_middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(
            BodyLimitMiddleware,
            limit=config.max_body_bytes,
            upload_limit=config.max_upload_bytes,
            upload_prefixes=("/api/v1/imports", "/imports", "/api/v1/fieldwork", "/fieldwork"),
        ),
        Middleware(
            SessionMiddleware,
            secret_key=config.effective_secret_key,
            session_cookie="closeloop_session",
            same_site="lax",
            https_only=config.https_only,
            max_age=12 * 3600,
        ),
    ]
    app.user_middleware = [*app.shared_middleware, *app.user_middleware]

    return app
