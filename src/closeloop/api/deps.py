"""Dependencies shared by the routers: the database, the calling actor, sessions, ETags."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, Forbidden, Unauthenticated, ValidationFailed
from closeloop.crm.records import jsonable
from closeloop.db.session import Database, commit
from closeloop.org import service as org_service
from closeloop.org.models import User

SESSION_USER_KEY = "user_id"
SESSION_CSRF_KEY = "csrf"
CSRF_HEADER = "x-csrf-token"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


async def reject_nul_characters(request: Request) -> None:
    """Refuse a query string holding a NUL character (422 naming the parameter): PostgreSQL cannot
    compare text with one, and no real input holds one."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            parameter = name.replace("\x00", "") or "query"
            raise ValidationFailed.one(parameter, "must not contain NUL characters", "invalid_character")


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


class TokenCache:
    """Actors resolved from bearer tokens, kept for a few seconds so each request need not look them up.

    A revocation in this process drops the entry at once; other processes notice within the TTL.
    """

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Actor]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def get(self, secret: str) -> Actor | None:
        entry = self._entries.get(self.key(secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, secret: str, actor: Actor) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[self.key(secret)] = (time.monotonic() + self.ttl, actor)

    def forget_token(self, token_id: int) -> None:
        with self._lock:
            for key in [k for k, (_, actor) in self._entries.items() if actor.token_id == token_id]:
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


def _resolve_user(database: Database, user_id: int) -> Actor | None:
    with database.reading(None, system=True) as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            return None
        return org_service.actor_for(session, user)


def _check_csrf(request: Request, session_data: dict[str, Any]) -> None:
    if request.method in _UNSAFE:
        expected = session_data.get(SESSION_CSRF_KEY)
        sent = request.headers.get(CSRF_HEADER)
        if not expected or not sent or not secrets.compare_digest(str(expected), sent):
            raise Forbidden("A signed-in browser request must carry the X-CSRF-Token header of its session")


async def current_actor(request: Request, database: DatabaseDep) -> Actor:
    """The caller: a bearer token (``Authorization: Bearer clk_…``) or a signed-in browser session.

    Resolved actors are cached for a few seconds, so most requests do not touch the database here;
    a miss resolves in the thread pool, never on the event loop.
    """
    cache: TokenCache = request.app.state.token_cache
    request_id: str | None = getattr(request.state, "request_id", None)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthenticated("Use 'Authorization: Bearer <token>'")
        actor = cache.get(secret)
        if actor is None:
            actor = await run_in_threadpool(_resolve_token, database, secret)
            cache.put(secret, actor)
        return actor.with_request(request_id)
    session_data: dict[str, Any] = request.scope.get("session") or {}
    user_id = session_data.get(SESSION_USER_KEY)
    if not isinstance(user_id, int):
        raise Unauthenticated()
    _check_csrf(request, session_data)
    key = f"session-user:{user_id}"
    cached = cache.get(key)
    if cached is None:
        cached = await run_in_threadpool(_resolve_user, database, user_id)
        if cached is None:
            raise Unauthenticated()
        cache.put(key, cached)
    return cached.with_request(request_id)


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def if_match(request: Request) -> int | None:
    """The version named by ``If-Match`` (``"3"`` or ``W/"3"``); ``None`` when absent or ``*``."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()):
        raise DomainError('If-Match must be an ETag this API issued, such as "3"', code="stale_version", status=412)
    return int(value)


ExpectedVersion = Annotated[int | None, Depends(if_match)]


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
    "commit",
    "current_actor",
    "dumps",
    "etag",
    "get_database",
    "json_response",
]
