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

from closeloop.api.deps import current_actor, language_of
from closeloop.core import i18n, messages
from closeloop.core.errors import DomainError, FieldProblem
from closeloop.db.base import Base

_log = logging.getLogger("closeloop.api")

PROBLEM_TYPE = messages.PROBLEM_TYPE
MEDIA_TYPE = messages.PROBLEM_MEDIA_TYPE

#: the header a problem document's language is told in
log = logging.getLogger(__name__)
#: the Content-Language of an answer in each of the interface's languages
CONTENT_LANGUAGE = {"zh_CN": "zh-CN", "en": "en"}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    problems: list[FieldProblem] | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    locale: str = "en",
) -> Response:
    """The problem document, its words in ``locale``. ``code``, ``type`` and each error's ``field`` and
    ``code`` are the same in every language; in another language than English the English words stay
    beside the translated ones (``detail_en``, each error's ``message_en``)."""
    body = messages.problem_document(status, code, detail, problems=problems, extra=extra, locale=locale)
    if request_id:
        body["request_id"] = request_id
    response_headers = dict(headers or {})
    response_headers["Content-Language"] = CONTENT_LANGUAGE.get(locale, locale)
    if status == 401:
        response_headers.setdefault("WWW-Authenticate", 'Bearer realm="closeloop"')
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=response_headers)


async def caller_language(request: Request) -> str:
    """:func:`language_of`, resolving the caller first when the refusal came before it was (an
    unknown query parameter is refused before the endpoint's dependencies run): the answer is in
    the user's language whichever check refused the request. A caller that cannot be resolved
    (no credential, a bad one) has no language of its own."""
    if (
        getattr(request.state, "locale", None) is None
        and i18n.accepted_language(request.headers.get("accept-language")) is None
    ):
        try:
            await current_actor(request)
        except DomainError:
            pass  # no usable credential: no language of its own
        except Exception:  # the refusal must still be answered (a database that is down, say)
            log.warning("the caller's language could not be resolved", exc_info=True)
    return language_of(request)


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


async def domain_problem(request: Request, error: DomainError) -> Response:
    """The problem document of a domain error (what the API's handler and its fast reads answer)."""
    return problem_response(
        error.status,
        error.code,
        error.message,
        problems=error.problems,
        request_id=_request_id(request),
        extra=error.extra or None,
        locale=await caller_language(request),
    )


def unexpected_problem(request: Request, error: Exception) -> Response:
    """The 500 problem document of an unexpected error, logged with the request id."""
    _log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, _request_id(request))
    return problem_response(
        500,
        "internal_error",
        "Something went wrong on our side; the request id identifies it in the log",
        request_id=_request_id(request),
        locale=language_of(request),
    )


def install(app: FastAPI) -> None:
    """Render domain errors, validation errors and HTTP errors as problem documents."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> Response:
        return await domain_problem(request, error)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, error: IntegrityError) -> Response:
        detail, problems = integrity_problem(error)
        return problem_response(
            409,
            "conflict",
            detail,
            problems=problems,
            request_id=_request_id(request),
            locale=await caller_language(request),
        )

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
            locale=await caller_language(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(error.status_code, "error")
        detail = error.detail if isinstance(error.detail, str) else messages.TITLES.get(error.status_code, "Error")
        return problem_response(
            error.status_code,
            code,
            detail,
            request_id=_request_id(request),
            headers=dict(error.headers or {}),
            locale=await caller_language(request),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        return unexpected_problem(request, error)
