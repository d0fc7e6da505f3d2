"""``Idempotency-Key`` on POST: a retried create never creates twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from closeloop.api.deps import commit, dumps, etag
from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.db.idempotency import IdempotencyKey
from closeloop.db.scope import tenant_clause

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 200


def _principal(actor: Actor) -> str:
    return f"user:{actor.user_id}" if actor.user_id is not None else f"{actor.kind.value}:{actor.label}"[:40]


def _request_hash(request: Request, payload: Any) -> str:
    canonical = orjson.dumps([request.method, request.url.path, payload], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def _headers(location: str | None, body: Any) -> dict[str, str]:
    headers = {}
    if location:
        headers["Location"] = location
    if isinstance(body, dict) and isinstance(body.get("version"), int):
        headers["ETag"] = etag(body["version"])
    return headers


def _replay(stored: IdempotencyKey) -> Response:
    headers = _headers(stored.location, orjson.loads(stored.response_body))
    headers["Idempotent-Replayed"] = "true"
    return Response(
        stored.response_body.encode(), status_code=stored.status_code, media_type="application/json", headers=headers
    )


def _find(session: Session, actor: Actor, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            tenant_clause(actor.organization_id, IdempotencyKey),
            IdempotencyKey.principal == _principal(actor),
            IdempotencyKey.key == key,
        )
    )


def _check_same(stored: IdempotencyKey, request: Request, request_hash: str) -> None:
    if stored.request_hash != request_hash:
        raise ValidationFailed.one(
            "Idempotency-Key",
            f"was already used for a different request ({stored.method} {stored.path}); use a new key",
            "idempotency_key_reused",
        )


def run_create(
    request: Request,
    session: Session,
    actor: Actor,
    payload: Any,
    produce: Callable[[], tuple[int, Any, str | None, int | None]],
) -> Response:
    """Run ``produce`` (which writes and returns status, body, location, record id) once per key.

    Without a key, it simply runs and commits. With a key seen before, the stored response comes
    back (same status and body) if the request is the same, and a 422 if it is not.
    """
    key = request.headers.get(HEADER)
    if key is None:
        status, body, location, _ = produce()
        commit(session)
        return Response(
            dumps(body), status_code=status, media_type="application/json", headers=_headers(location, body)
        )
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed.one("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} characters")
    request_hash = _request_hash(request, payload)
    stored = _find(session, actor, key)
    if stored is not None:
        _check_same(stored, request, request_hash)
        return _replay(stored)
    status, body, location, record_id = produce()
    encoded = dumps(body)
    session.add(
        IdempotencyKey(
            organization_id=actor.organization_id,
            principal=_principal(actor),
            key=key,
            method=request.method,
            path=request.url.path[:500],
            request_hash=request_hash,
            status_code=status,
            response_body=encoded.decode(),
            location=location,
            record_id=record_id,
        )
    )
    try:
        session.flush()
        commit(session)
    except IntegrityError:
        # If another request with the same key won the race, ours is rolled back and theirs is the
        # answer; any other constraint (a duplicate the service could not see yet) is the caller's.
        session.rollback()
        stored = _find(session, actor, key)
        if stored is None:
            raise
        _check_same(stored, request, request_hash)
        return _replay(stored)
    return Response(encoded, status_code=status, media_type="application/json", headers=_headers(location, body))
