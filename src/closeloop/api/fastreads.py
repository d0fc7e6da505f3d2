"""Fast reads: ``GET /v1/<plural>/{id}`` and ``GET /v1/<plural>`` answered without FastAPI's layers.

The two hottest requests of the API — read a record, list a page — spend as much time in FastAPI's
machinery (its exception and exit-stack middlewares, route matching, solving the dependencies,
validating the parameters) as in reading the database. A request whose parameters are plainly
valid is answered here instead, by calling the very functions the FastAPI endpoints call, in the
order FastAPI calls them:

1. :func:`~closeloop.api.deps.reject_nul_characters` (what the application's dependency checks of a
   list's query string: its filters are the list's own to check, and a read with any query parameter
   goes to FastAPI, which refuses it);
2. :func:`~closeloop.api.deps.current_actor` (bearer token or browser session, the cached actors);
3. :class:`~closeloop.api.resources.RecordReads` — the endpoints' own body: one hop to a database
   thread, ``database.reading(actor)`` (tenant scoping, and on PostgreSQL the row-level security
   wall), ``records.read_one`` / ``read_page`` (permissions, field masks, filters, sort, cursor),
   the ETag or ``Link`` header;
4. errors rendered by :mod:`closeloop.api.problems`, the functions the exception handlers use.

There is therefore still one door to the data (STYLE.md habit 3): nothing here reads a row, checks a
permission or applies a mask. Anything this module does not recognise as plainly valid — a
parameter FastAPI would refuse or coerce (``limit=0``, ``limit=05``, an id out of range, a ``q``
over 200 characters), a trailing slash, another method — goes to FastAPI unchanged, which answers
it as before: the problem documents of bad input are FastAPI's, by construction.

Which routes qualify is decided once, from the applications' own route tables: for each record
type, the first route that matches ``GET /v1/<plural>`` (or ``/v1/<plural>/1``) must be that record
type's list (or get) endpoint — so a route a router adds before them (``/opportunities/board``)
keeps winning, as it would in FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from closeloop.api import problems
from closeloop.api.deps import current_actor, reject_nul_characters
from closeloop.api.resources import FAST_READS, RecordReads
from closeloop.core.errors import DomainError
from closeloop.core.pagination import MAX_LIMIT

#: the largest id a path may name (the endpoints' ``le=2**63 - 1``)
_MAX_ID = 2**63 - 1
#: the longest text search the list endpoint accepts (its ``q`` parameter's ``max_length``)
_MAX_Q = 200


@dataclass(frozen=True)
class _Segment:
    application: FastAPI
    page: RecordReads | None  # GET /v1/<segment>
    one: RecordReads | None  # GET /v1/<segment>/<id>


def _first_match(routers: Sequence[APIRouter], path: str) -> Callable[..., Any] | None:
    """The endpoint of the first route that fully matches ``GET path`` (without the ``/v1`` the
    routers are included under), in the order the application matches them; ``None`` when none
    does, or when something that is not a plain route (which could match anything) comes first."""
    scope: Scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "path_params": {}}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                return None
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.endpoint
    return None


def _reads(routers: Sequence[APIRouter], path: str) -> RecordReads | None:
    endpoint = _first_match(routers, path)
    return None if endpoint is None else FAST_READS.get(endpoint)


def _plain_positive(text: str, highest: int) -> int | None:
    """``text`` as an int when it is written plainly (ASCII digits, no sign, no leading zero) and lies in
    ``1..highest``; else ``None``."""
    if not text or not text.isascii() or not text.isdecimal() or text[0] == "0" or len(text) > 19:
        return None
    value = int(text)
    return value if value <= highest else None


def _plainly_valid_page_query(query: Mapping[str, str]) -> bool:
    """Whether FastAPI would accept the list's declared parameters as they are (``limit``, ``q``;
    ``cursor`` and ``sort`` take any text): else FastAPI answers, with its own problem document."""
    limit = query.get("limit")
    if limit is not None and _plain_positive(limit, MAX_LIMIT) is None:
        return False
    text = query.get("q")
    return text is None or len(text) <= _MAX_Q


class FastReads:
    """The fast reads of the API's record types, keyed by the path's first segment after ``/v1``."""

    def __init__(self, prefix: str, segments: Mapping[str, tuple[FastAPI, Sequence[APIRouter]]]) -> None:
        """``segments``: each first path segment's application and the routers it holds, in order."""
        self.prefix = prefix
        self.segments: dict[str, _Segment] = {}
        for name, (application, routers) in segments.items():
            page = _reads(routers, f"/{name}")
            one = _reads(routers, f"/{name}/1")
            if page is not None or one is not None:
                self.segments[name] = _Segment(application, page, one)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str, segment: str) -> bool:
        """Answer ``scope`` (a GET of ``path`` under the prefix) if it is a plainly valid fast read;
        ``False`` (nothing sent) when FastAPI should answer it."""
        found = self.segments.get(segment)
        if found is None:
            return False
        rest = path[len(self.prefix) + 1 + len(segment) :]
        record_id: int | None = None
        if rest == "":
            reads = found.page
        elif rest[0] == "/":
            reads = found.one
            record_id = _plain_positive(rest[1:], _MAX_ID)
            if record_id is None or scope.get("query_string"):
                return False  # (a query parameter: the read takes none, FastAPI's check refuses it)
        else:
            return False
        if reads is None:
            return False
        scope["app"] = found.application  # what FastAPI sets: ``request.app.state`` is the API's state
        request = Request(scope, receive)
        if record_id is None and not _plainly_valid_page_query(request.query_params):
            return False
        try:
            await reject_nul_characters(request)
            actor = await current_actor(request)
            if record_id is None:
                response = await reads.page(request, actor)
            else:
                response = await reads.one(request, actor, record_id)
        except DomainError as error:
            response = await problems.domain_problem(request, error)
        except Exception as error:
            # as FastAPI's server-error middleware does: a 500 problem, then the error to the server
            await problems.unexpected_problem(request, error)(scope, receive, send)
            raise
        await response(scope, receive, send)
        return True
