"""Dependencies shared by the routers: the database, the calling actor, sessions, ETags."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from closeloop.core import i18n
from closeloop.core.actor import Actor
from closeloop.core.errors import (
    DomainError,
    Forbidden,
    Unauthenticated,
    UnknownParameters,
    UnsupportedMediaType,
    ValidationFailed,
)
from closeloop.crm.records import jsonable
from closeloop.db.session import Database, commit
from closeloop.org import browser
from closeloop.org import service as org_service

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

CSRF_HEADER = "x-csrf-token"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


#: the threads that run blocking database work for the event loop (as many as Starlette's default limiter)
_BLOCKING = ThreadPoolExecutor(max_workers=40, thread_name_prefix="closeloop-db")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a worker thread and await its result.

    The hot read endpoints (read one record, list a page) hop once per request with this instead of
    FastAPI's sync-endpoint path (AnyIO's ``to_thread``, with its capacity limiter and cancel
    scopes): asyncio's executor hop does the same job at about half the cost per request.
    """
    return await asyncio.get_running_loop().run_in_executor(_BLOCKING, partial(function, *args))


async def reject_nul_characters(request: Request) -> None:
    """Refuse a query string holding a NUL character (422 naming the parameter): PostgreSQL cannot
    compare text with one, and no real input holds one."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            parameter = name.replace("\x00", "") or "query"
            raise ValidationFailed.one(parameter, "must not contain NUL characters", "invalid_character")


_OPEN_QUERY = "__closeloop_open_query__"


def open_query(endpoint: F) -> F:
    """Mark an endpoint that reads filters from the query string itself (a record list, an export:
    ``field__op=value``, ``custom.<name>``) and refuses the ones it does not know with
    :class:`~closeloop.core.errors.UnknownParameters` — so :func:`check_query_string` leaves them to it."""
    setattr(endpoint, _OPEN_QUERY, True)
    return endpoint


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters ``dependant`` and its sub-dependencies declare (a model's fields by alias)."""
    names: set[str] = set()
    for field in dependant.query_params:
        annotation = field.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(info.alias or name for name, info in annotation.model_fields.items())
        else:
            names.add(field.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


#: the attribute a route keeps its accepted query parameters in, once computed on its first request
_ACCEPTED = "_closeloop_accepted_query"


def accepted_query_parameters(route: APIRoute) -> frozenset[str] | None:
    """The query parameters ``route`` takes, as its signature declares them (what its OpenAPI
    operation lists); ``None`` for an :func:`open_query` endpoint."""
    kept: tuple[frozenset[str] | None] | None = getattr(route, _ACCEPTED, None)
    if kept is None:
        found = None if getattr(route.endpoint, _OPEN_QUERY, False) else frozenset(_query_names(route.dependant))
        kept = (found,)
        setattr(route, _ACCEPTED, kept)
    return kept[0]


async def check_query_string(request: Request) -> None:
    """The API's one check of every request's query string (an application dependency): no NUL
    character, and no parameter the endpoint does not take — a 422 naming each unknown one and
    listing the accepted ones, whichever endpoint it is (a misspelt filter is never ignored)."""
    await reject_nul_characters(request)
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    accepted = accepted_query_parameters(route)
    if accepted is None:
        return
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in accepted]
    if unknown:
        raise UnknownParameters(unknown, accepted)


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


class TokenCache:
    """Actors already resolved, kept for a few seconds so that most requests need not look them up:
    bearer tokens by the SHA-256 of their secret, browser sessions by user and session version.
    The two kinds live under different keys, so no value of one can ever stand for the other.

    A revocation in this process drops the entries at once; other processes notice within the TTL.
    """

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, Actor]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _token_key(secret: str) -> tuple[str, str]:
        return ("token", hashlib.sha256(secret.encode()).hexdigest())

    @staticmethod
    def _session_key(user_id: int, session_version: int) -> tuple[str, str]:
        return ("session", f"{user_id}:{session_version}")

    def _get(self, key: tuple[str, str]) -> Actor | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _put(self, key: tuple[str, str], actor: Actor) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, actor)

    def token(self, secret: str) -> Actor | None:
        return self._get(self._token_key(secret))

    def put_token(self, secret: str, actor: Actor) -> None:
        self._put(self._token_key(secret), actor)

    def session(self, user_id: int, session_version: int) -> Actor | None:
        return self._get(self._session_key(user_id, session_version))

    def put_session(self, user_id: int, session_version: int, actor: Actor) -> None:
        self._put(self._session_key(user_id, session_version), actor)

    def forget_token(self, token_id: int) -> None:
        self._forget(lambda actor: actor.token_id == token_id)

    def forget_user(self, user_id: int) -> None:
        """Drop every cached actor of a user (password changed, deactivated, role changed)."""
        self._forget(lambda actor: actor.user_id == user_id)

    def _forget(self, matches: Callable[[Actor], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, actor) in self._entries.items() if matches(actor)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _resolve_token(database: Database, secret: str) -> Actor:
    with database.reading(None, system=True) as session:
        found = org_service.resolve_token(session, secret)
        if found is None:
            raise Unauthenticated("The bearer token is unknown, expired or revoked")
        token, user = found
        return org_service.actor_for(session, user, token=token)


def _resolve_user(database: Database, user_id: int, session_version: int) -> Actor | None:
    found = browser.resolve(database, user_id, session_version)
    return found[1] if found else None


def _check_csrf(request: Request, session_data: dict[str, Any]) -> None:
    if request.method in _UNSAFE and not browser.csrf_matches(session_data, request.headers.get(CSRF_HEADER)):
        raise Forbidden("A signed-in browser request must carry the X-CSRF-Token header of its session")


def language_of(request: Request) -> str:
    """The caller's language, for every answer's words (a success as much as a problem document):
    ``Accept-Language`` first, then the user's own setting, then the organization's default (the
    actor's setting holds the two, kept on the request by :func:`current_actor`), then Chinese."""
    return i18n.language(request.headers.get("accept-language"), getattr(request.state, "locale", None))


async def current_actor(request: Request) -> Actor:
    """The caller: a bearer token (``Authorization: Bearer clk_…``) or a signed-in browser session.
    Its ``locale`` is the language of the answer, :func:`language_of` the request (the user's or the
    organization's setting only when the request asks for no language it has).

    Resolved actors are cached for a few seconds, so most requests do not touch the database here;
    a miss resolves in the thread pool, never on the event loop. (The database is taken from the
    application's state, as :func:`get_database` does, rather than as a sub-dependency: every
    request resolves the caller, and each dependency costs FastAPI a solving step.)
    """
    database: Database = request.app.state.database
    cache: TokenCache = request.app.state.token_cache
    request_id: str | None = getattr(request.state, "request_id", None)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthenticated("Use 'Authorization: Bearer <token>'")
        if not secret.startswith(org_service.TOKEN_PREFIX):
            raise Unauthenticated("The bearer token is unknown, expired or revoked")
        actor = cache.token(secret)
        if actor is None:
            actor = await run_in_threadpool(_resolve_token, database, secret)
            cache.put_token(secret, actor)
        request.state.locale = actor.locale  # the user's setting: the answer's language after Accept-Language
        return actor.with_request(request_id, _answer_language(request))
    session_data: dict[str, Any] = request.scope.get("session") or {}
    signed_in = browser.credentials(session_data)
    if signed_in is None:
        raise Unauthenticated()
    user_id, session_version = signed_in
    _check_csrf(request, session_data)
    cached = cache.session(user_id, session_version)
    if cached is None:
        cached = await run_in_threadpool(_resolve_user, database, user_id, session_version)
        if cached is None:
            raise Unauthenticated()
        cache.put_session(user_id, session_version, cached)
    request.state.locale = cached.locale
    return cached.with_request(request_id, _answer_language(request))


def _answer_language(request: Request) -> str:
    """:func:`language_of`, noted on the request: the middleware sends it as ``Content-Language``."""
    language = request.state.answer_language = language_of(request)
    return language


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def if_match(request: Request) -> int | None:
    """The version named by ``If-Match`` (``"3"`` or ``W/"3"``); ``None`` when absent or ``*``."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not (value.isdecimal()):
        raise DomainError('If-Match must be an ETag this API issued, such as "3"', code="stale_version", status=412)
    return int(value)


ExpectedVersion = Annotated[int | None, Depends(if_match)]


def form_body(accepted: tuple[str, ...], detail: str) -> Any:
    """A dependency that refuses (415, ``accepted_media_types``) a body that is not one of the form
    media types an endpoint reads, before its fields are validated (FastAPI may have parsed it;
    nothing is stored): a JSON body sent to an upload would otherwise be told "file: Field
    required" of a file it did send."""

    def check(request: Request) -> None:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in accepted:
            raise UnsupportedMediaType(detail, accepted)

    return Depends(check)


#: the file uploads (imports, knowledge documents, contract templates and comparisons)
NOT_MULTIPART = "The body must be multipart/form-data: the fields as form fields and the file as a file, not JSON"
Multipart = Annotated[None, form_body(("multipart/form-data",), NOT_MULTIPART)]


def etag(version: int) -> str:
    return f'"{version}"'


def _default(value: Any) -> Any:
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"cannot serialize {type(value).__name__}")
    return converted


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default)


def json_response(data: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status_code, media_type="application/json", headers=headers)


__all__ = [
    "CurrentActor",
    "DatabaseDep",
    "ExpectedVersion",
    "check_query_string",
    "commit",
    "current_actor",
    "dumps",
    "etag",
    "get_database",
    "in_thread",
    "json_response",
    "language_of",
    "open_query",
]
