"""Every error the API returns is an RFC 9457 problem document that names the field at fault."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from closeloop.core.errors import DomainError, FieldProblem
from closeloop.db.base import Base

_log = logging.getLogger("closeloop.api")

PROBLEM_TYPE = "https://closeloop.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    problems: list[FieldProblem] | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if problems:
        body["errors"] = [p.as_dict() for p in problems]
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    response_headers = dict(headers or {})
    if status == 401:
        response_headers.setdefault("WWW-Authenticate", 'Bearer realm="closeloop"')
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=response_headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problems(errors: list[dict[str, Any]] | Any) -> list[FieldProblem]:
    problems = []
    for error in errors:
        message = str(error.get("msg", "is invalid"))
        message = message.removeprefix("Value error, ")
        location = error.get("loc", ())
        if error.get("type") == "json_invalid":
            # the location is the body and a character position, not a field
            reason = (error.get("ctx") or {}).get("error", "")
            position = location[-1] if len(location) > 1 else "?"
            problems.append(
                FieldProblem("body", f"is not valid JSON ({reason} at character {position})", "json_invalid")
            )
            continue
        problems.append(FieldProblem(_field_path(location), message, str(error.get("type", "invalid"))))
    return problems


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")
_QUOTED_NAME = re.compile(r'"([A-Za-z0-9_]+)"')


def _unique_columns(message: str) -> list[str] | None:
    """The columns of the unique constraint a database error message names (SQLite or PostgreSQL)."""
    found = _SQLITE_UNIQUE.search(message)
    if found:
        return [part.split(".")[-1] for part in found.group(1).split(", ")]
    names = set(_QUOTED_NAME.findall(message))
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.name in names:
                return [column.name for column in constraint.columns]
    return None


def integrity_problem(error: IntegrityError) -> tuple[str, list[FieldProblem]]:
    """What a constraint the database enforced (a race the service checks missed) means to the caller."""
    message = str(error.orig)
    columns = _unique_columns(message)
    if columns is not None:
        fields = [c for c in columns if c != "organization_id"] or columns
        return (
            f"Another record already has this {', '.join(fields)}",
            [FieldProblem(field, "is already taken", "duplicate") for field in fields],
        )
    if "foreign key" in message.lower():
        return ("The change refers to a record that no longer exists, or removes one still referred to", [])
    return ("The change conflicts with data stored meanwhile; reload and try again", [])


def domain_problem(request: Request, error: DomainError) -> Response:
    """The problem document of a domain error (what the API's handler and its fast reads answer)."""
    return problem_response(
        error.status,
        error.code,
        error.message,
        problems=error.problems,
        request_id=_request_id(request),
        extra=error.extra or None,
    )


def unexpected_problem(request: Request, error: Exception) -> Response:
    """The 500 problem document of an unexpected error, logged with the request id."""
    _log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, _request_id(request))
    return problem_response(
        500,
        "internal_error",
        "Something went wrong on our side; the request id identifies it in the log",
        request_id=_request_id(request),
    )


def install(app: FastAPI) -> None:
    """Render domain errors, validation errors and HTTP errors as problem documents."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> Response:
        return domain_problem(request, error)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, error: IntegrityError) -> Response:
        detail, problems = integrity_problem(error)
        return problem_response(409, "conflict", detail, problems=problems, request_id=_request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        problems = validation_problems(error.errors())
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
        return problem_response(
            422,
            "validation_failed",
            f"The request has invalid fields: {summary}",
            problems=problems,
            request_id=_request_id(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(error.status_code, "error")
        detail = error.detail if isinstance(error.detail, str) else _TITLES.get(error.status_code, "Error")
        return problem_response(
            error.status_code, code, detail, request_id=_request_id(request), headers=dict(error.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        return unexpected_problem(request, error)
