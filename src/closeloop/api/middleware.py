"""ASGI middleware: a request id (and the answer's language) on every request, and a cap on body size."""

from __future__ import annotations

import os
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeloop.api.problems import CONTENT_LANGUAGE, problem_response
from closeloop.core import i18n, messages

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Take the caller's ``X-Request-ID`` when it is sane, else make one; echo it on the response.
    An answer to a caller whose language was resolved (``current_actor``) and that says no language
    of its own also gets ``Content-Language``: successes as much as problems."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SANE_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or os.urandom(16).hex()  # as random as uuid4().hex, cheaper to make
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"x-request-id", raw_id)]
                language = scope["state"].get("answer_language")  # the caller's, once resolved
                if language:
                    _say_language(headers, CONTENT_LANGUAGE.get(language, language).encode())
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def _say_language(headers: list[tuple[bytes, bytes]], language: bytes) -> None:
    """``Content-Language`` and ``Vary: Accept-Language`` on a JSON answer that says no language of
    its own: its words follow the caller's language. A file (an export, a photo, an error report)
    is in the language it was written in, so it gets neither."""
    content_type = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-language":
            return
        if lowered == b"content-type":
            content_type = value.split(b";")[0].strip().lower()
    if content_type != b"application/json":
        return
    headers.append((b"content-language", language))
    for position, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"accept-language" not in value.lower() and value.strip() != b"*":
                headers[position] = (name, value + b", Accept-Language")
            return
    headers.append((b"vary", b"Accept-Language"))


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes (``upload_limit`` under ``upload_prefixes``) with a 413 problem."""

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int, upload_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.upload_limit if path.startswith(self.upload_prefixes) else self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_413(send, limit, scope)
                    return
        # Read the body up front (it is at most ``limit`` bytes), so an oversized chunked body is
        # refused with a clean 413 before the application sees any of it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            received += len(body)
            if received > limit:
                await _send_413(send, limit, scope)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            if buffered:
                return buffered.pop()
            return await receive()

        await self.app(scope, replay, send)


async def _send_413(send: Send, limit: int, scope: Scope) -> None:
    """The 413 problem document in the caller's language. Nobody is signed in yet at this point (the
    body is refused before the application resolves the caller), so the language is the request's
    ``Accept-Language``, then the default every other problem falls back to."""
    state: dict[str, Any] = scope.get("state", {})
    accept_language = next(
        (value.decode("latin-1") for name, value in scope["headers"] if name == b"accept-language"), None
    )
    response = problem_response(
        413,
        "payload_too_large",
        messages.TOO_LARGE % {"limit": limit},
        request_id=state.get("request_id"),
        extra={"limit": limit},
        locale=i18n.language(accept_language),
    )
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
