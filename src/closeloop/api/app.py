"""The API application: routers under /api/v1, OpenAPI at /api/openapi.json.

FastAPI matches a request against every route in turn, and its per-route cost is no longer small
(a few microseconds each, paid on every request, growing with every route the product adds). So the
API is served by one small FastAPI application per first path segment (``/v1/opportunities/…``,
``/v1/users/…``), chosen by a dictionary lookup, while one application holding every route gives the
OpenAPI description and the interactive docs. Reading a record and listing a page, when their
parameters are plainly valid, are answered before FastAPI by :mod:`closeloop.api.fastreads` with
the same functions the endpoints call. All of them share one ``state``, the same error
rendering and the same dependencies: to a client it is one API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import State
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from closeloop import __version__
from closeloop.api import problems
from closeloop.api.deps import check_query_string
from closeloop.api.fastreads import FastReads
from closeloop.api.routers import (
    approvals,
    assets,
    assistant,
    auth,
    automation,
    cash,
    changes,
    compliance,
    customfields,
    dashboards,
    fieldsecurity,
    fieldwork,
    forecasting,
    formulas,
    imports,
    knowledge,
    mappings,
    notifications,
    pools,
    quality,
    records,
    reports,
    rule_language,
    search,
    targets,
    users,
    work_reports,
)

PREFIX = "/v1"
DESCRIPTION = (
    "REST API of Closeloop, the closed-loop sales platform. Authenticate with "
    "`Authorization: Bearer <token>` (get one from `POST /api/v1/auth/token` or "
    "`closeloop token create`). Errors are `application/problem+json` and name the field at fault. "
    "Lists are cursor-paginated; PATCH and DELETE honour `If-Match`; POST honours `Idempotency-Key`."
)


def _routers() -> list[APIRouter]:
    """Every router, in matching order (``/users/me`` before ``/users/{id}``)."""
    return [
        auth.router,
        users.router,
        reports.router,
        imports.router,
        mappings.router,
        dashboards.router,  # /lineage/metric/… before the fields' /lineage/{noun}/{field}
        customfields.router,
        fieldsecurity.router,
        changes.router,
        assets.router,
        formulas.router,
        quality.router,
        notifications.router,
        compliance.router,
        automation.router,
        search.router,
        rule_language.router,
        knowledge.router,
        assistant.router,
        pools.router,
        approvals.router,
        cash.router,
        targets.router,
        fieldwork.router,
        work_reports.router,
        forecasting.router,  # /opportunities/{id}/win-probability before the record routes
        *records.routers.values(),
    ]


def _application(routers: Iterable[APIRouter], *, described: bool) -> FastAPI:
    application = FastAPI(
        title="Closeloop API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json" if described else None,
        docs_url=None,  # served below from the vendored Swagger UI: no CDN, works offline
        redoc_url=None,
        dependencies=[Depends(check_query_string)],
    )
    if described:

        @application.get("/docs", include_in_schema=False)
        async def docs(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return get_swagger_ui_html(
                openapi_url=f"{root}/openapi.json",
                title="Closeloop API",
                swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                swagger_css_url="/static/vendor/swagger-ui.css",
                swagger_favicon_url="data:,",
            )

    problems.install(application)
    for router in routers:
        application.include_router(router, prefix=PREFIX)
    return application


def _first_segment(path: str) -> str:
    """``opportunities`` for ``/v1/opportunities/7`` and for a router's ``/opportunities/{record_id}``."""
    return path.removeprefix(PREFIX).lstrip("/").split("/", 1)[0]


class Api:
    """The API as one ASGI application, mounted by the composition root under ``/api``."""

    def __init__(self) -> None:
        routers = _routers()
        self.described = _application(routers, described=True)
        by_segment: dict[str, list[APIRouter]] = {}
        for router in routers:
            for route in router.routes:
                segment = _first_segment(getattr(route, "path", ""))
                if router not in by_segment.setdefault(segment, []):
                    by_segment[segment].append(router)
        self.segments = {segment: _application(group, described=False) for segment, group in by_segment.items()}
        self.state = State()
        for application in (self.described, *self.segments.values()):
            application.state = self.state
        self.fast_reads = FastReads(
            PREFIX, {segment: (self.segments[segment], group) for segment, group in by_segment.items()}
        )

    @property
    def routes(self) -> list[BaseRoute]:
        """Every route of the API (for introspection and tests)."""
        return list(self.described.routes)

    def openapi(self) -> dict[str, Any]:
        return self.described.openapi()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        application = self.described
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(PREFIX + "/"):
                segment = _first_segment(path)
                if scope["method"] == "GET" and await self.fast_reads(scope, receive, send, path, segment):
                    return
                application = self.segments.get(segment, self.described)
        await application(scope, receive, send)


def create_api() -> Api:
    """The API, to be mounted under ``/api``."""
    return Api()
