"""The API application: routers under /api/v1, OpenAPI at /api/openapi.json."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from closeloop import __version__
from closeloop.api import problems
from closeloop.api.deps import reject_nul_characters
from closeloop.api.routers import auth, imports, records, reports, users


def create_api() -> FastAPI:
    """The API as its own FastAPI application, mounted by the composition root under ``/api``."""
    api = FastAPI(
        title="Closeloop API",
        version=__version__,
        description=(
            "REST API of Closeloop, the closed-loop sales platform. Authenticate with "
            "`Authorization: Bearer <token>` (get one from `POST /api/v1/auth/token` or "
            "`closeloop token create`). Errors are `application/problem+json` and name the field at fault. "
            "Lists are cursor-paginated; PATCH and DELETE honour `If-Match`; POST honours `Idempotency-Key`."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(reject_nul_characters)],
    )
    problems.install(api)
    api.include_router(auth.router, prefix="/v1")
    api.include_router(users.router, prefix="/v1")
    api.include_router(reports.router, prefix="/v1")
    api.include_router(imports.router, prefix="/v1")
    api.include_router(records.router, prefix="/v1")
    return api
