"""One router shape for every CRM record: list, create, read, patch, delete, restore, history, export.

(No ``from __future__ import annotations`` here: the endpoints' annotations are built at run time.)
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel
from starlette.datastructures import URL
from starlette.responses import Response

from closeloop.api.deps import (
    CurrentActor,
    DatabaseDep,
    ExpectedVersion,
    commit,
    etag,
    in_thread,
    json_response,
    open_query,
)
from closeloop.api.idempotency import run_create
from closeloop.api.schemas import AuditPage, page_model, read_model
from closeloop.core.actor import Actor
from closeloop.core.pagination import MAX_LIMIT, Page
from closeloop.crm import history, records
from closeloop.crm.records import RecordType
from closeloop.db.session import Database

RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The record's id")]


@dataclass
class RecordEndpoints:
    """What the generic router needs to know about one record type."""

    record_type: RecordType[Any]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    create: Callable[..., Any]  # (session, actor, *, data) -> record
    update: Callable[..., Any]  # (session, actor, *, record_id, data, expected_version) -> record
    delete: Callable[..., None]  # (session, actor, *, record_id, expected_version)
    read_extra: dict[str, Any] = field(default_factory=dict)
    tag: str = ""
    summary_noun: str = ""


def record_body(session: Any, actor: Actor, record_type: RecordType[Any], record: Any) -> dict[str, Any]:
    return records.serialize(session, actor, record_type, record)


def record_response(
    session: Any, actor: Actor, record_type: RecordType[Any], record: Any, status_code: int = 200
) -> Response:
    return json_response(
        record_body(session, actor, record_type, record),
        status_code=status_code,
        headers={"ETag": etag(record.version)},
    )


class RecordReads:
    """Reading one record and listing a page of one record type: what the ``GET /<plural>/{id}`` and
    ``GET /<plural>`` endpoints do once FastAPI has resolved the caller and checked the parameters.

    The API's fast reads (:mod:`closeloop.api.fastreads`) call the same two methods, so the two
    ways in share every line that touches the database, the masks, the ETag and the Link header.
    """

    def __init__(self, record_type: RecordType[Any]) -> None:
        self.record_type = record_type

    def _read_one(self, database: Database, actor: Actor, record_id: int) -> dict[str, Any]:
        return database.read(actor, lambda session: records.read_one(session, actor, self.record_type, record_id))

    def _read_page(
        self, database: Database, actor: Actor, params: dict[str, str], url: URL
    ) -> tuple[Page[dict[str, Any]], str | None]:
        result = database.read(actor, lambda session: records.read_page(session, actor, self.record_type, params))
        link = f'<{url.include_query_params(cursor=result.next_cursor)}>; rel="next"' if result.next_cursor else None
        return result, link

    async def one(self, request: Request, actor: Actor, record_id: int) -> Response:
        """The record as ``actor`` may see it, with its ETag (304 when ``If-None-Match`` names it)."""
        body = await in_thread(self._read_one, request.app.state.database, actor, record_id)
        tag = etag(body["version"])
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return json_response(body, headers={"ETag": tag})

    async def page(self, request: Request, actor: Actor) -> Response:
        """One page of records filtered and sorted by the query string, with a ``Link`` to the next."""
        database: Database = request.app.state.database
        params = dict(request.query_params)
        if "format" in params:  # the exports' parameter, which records.read_page lets through for them
            raise records.unknown_filter(self.record_type, "format", ())
        result, link = await in_thread(self._read_page, database, actor, params, request.url)
        headers = {"Link": link} if link else {}
        return json_response({"items": result.items, "next_cursor": result.next_cursor}, headers=headers)


#: the record endpoints' functions (get one, list a page) → the reads they serve: how the fast
#: reads recognise, among an application's routes, the ones they may answer in FastAPI's stead
FAST_READS: dict[Callable[..., Any], RecordReads] = {}


def _filter_parameters(record_type: RecordType[Any]) -> list[dict[str, Any]]:
    """The OpenAPI description of a list's filter parameters (``field=value``; the operators are
    suffixes). They are described here rather than declared on the endpoint: the list reads them
    from the query string itself, so FastAPI need not check each of them on every request."""
    parameters = []
    for name, spec in record_type.filters.items():
        description = f"Filter on {name} ({spec.kind.value}). Operators: {name}__gte, __lte, __in, … per type."
        if spec.choices:
            description += " One of: " + ", ".join(spec.choices) + "."
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name.replace("_", " ").title()},
                "description": description,
            }
        )
    return parameters


def record_router(spec: RecordEndpoints) -> APIRouter:
    """The standard endpoints of one record type, on a router of their own under ``/<plural>``
    (so that matching a request checks the prefix once instead of every record route)."""
    record_type = spec.record_type
    plural = record_type.plural
    noun = record_type.noun
    label = spec.summary_noun or noun.replace("_", " ")
    tags: list[str | Any] = [spec.tag or plural]
    read = read_model(record_type, extra=spec.read_extra)
    page = page_model(read)
    create_schema = spec.create_schema
    update_schema = spec.update_schema
    router = APIRouter(prefix=f"/{plural}")

    reads = RecordReads(record_type)

    @open_query  # the filters are read from the query string by records.read_page, which refuses unknown ones
    async def list_records(
        request: Request,
        actor: CurrentActor,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
        sort: Annotated[
            str | None, Query(description=f"Sort field, '-' for descending (default {record_type.default_sort})")
        ] = None,
        q: Annotated[str | None, Query(max_length=200, description="Text search")] = None,
    ) -> Response:
        return await reads.page(request, actor)

    FAST_READS[list_records] = reads
    router.add_api_route(
        "",
        list_records,
        methods=["GET"],
        tags=tags,
        response_model=page,
        summary=f"List {plural.replace('_', ' ')}",
        operation_id=f"list_{plural}",
        response_class=Response,
        openapi_extra={"parameters": _filter_parameters(record_type)},
        description="Cursor-paginated. Filters: `field=value` or `field__op=value` "
        "with op in eq, ne, in, gt, gte, lt, lte, contains, startswith, isnull; custom fields as "
        "`custom.<name>__op=value`, and `sort=custom.<name>`.",
    )

    def create_record(
        request: Request,
        database: DatabaseDep,
        actor: CurrentActor,
        body: Annotated[create_schema, Body()],  # type: ignore[valid-type]
    ) -> Response:
        with database.writing(actor) as session:

            def produce() -> tuple[int, Any, str | None, int | None]:
                record = spec.create(session, actor, data=body)
                payload = record_body(session, actor, record_type, record)
                warnings = session.info.pop("duplicate_warnings", None)
                if warnings:  # the duplicate check warned (CN-2): the record is created, the caller told
                    payload["duplicate_warnings"] = warnings
                return 201, payload, f"/api/v1/{plural}/{record.id}", record.id

            return run_create(request, session, actor, body.model_dump(mode="json"), produce)  # type: ignore[attr-defined]

    router.add_api_route(
        "",
        create_record,
        methods=["POST"],
        tags=tags,
        response_model=read,
        status_code=201,
        summary=f"Create a {label}",
        operation_id=f"create_{noun}",
        response_class=Response,
        description="Send `Idempotency-Key` to make retries safe.",
    )

    async def get_record(request: Request, actor: CurrentActor, record_id: RecordId) -> Response:
        return await reads.one(request, actor, record_id)

    FAST_READS[get_record] = reads
    router.add_api_route(
        "/{record_id}",
        get_record,
        methods=["GET"],
        tags=tags,
        response_model=read,
        summary=f"Read a {label}",
        operation_id=f"get_{noun}",
        response_class=Response,
    )

    def patch_record(
        database: DatabaseDep,
        actor: CurrentActor,
        record_id: RecordId,
        expected_version: ExpectedVersion,
        body: Annotated[update_schema, Body()],  # type: ignore[valid-type]
    ) -> Response:
        with database.writing(actor) as session:
            record = spec.update(session, actor, record_id=record_id, data=body, expected_version=expected_version)
            response = record_response(session, actor, record_type, record)
            commit(session)
            return response

    router.add_api_route(
        "/{record_id}",
        patch_record,
        methods=["PATCH"],
        tags=tags,
        response_model=read,
        summary=f"Change a {label}",
        operation_id=f"update_{noun}",
        response_class=Response,
        description="Send `If-Match` with the ETag you read: a stale version answers 412.",
    )

    def delete_record(
        database: DatabaseDep, actor: CurrentActor, record_id: RecordId, expected_version: ExpectedVersion
    ) -> Response:
        with database.writing(actor) as session:
            spec.delete(session, actor, record_id=record_id, expected_version=expected_version)
            commit(session)
            return Response(status_code=204)

    router.add_api_route(
        "/{record_id}",
        delete_record,
        methods=["DELETE"],
        tags=tags,
        status_code=204,
        summary=f"Delete a {label}",
        operation_id=f"delete_{noun}",
        response_class=Response,
        description="Soft delete: the record can be restored.",
    )

    def restore_record(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
        with database.writing(actor) as session:
            record = records.restore(session, actor, record_type, record_id)
            response = record_response(session, actor, record_type, record)
            commit(session)
            return response

    router.add_api_route(
        "/{record_id}/restore",
        restore_record,
        methods=["POST"],
        tags=tags,
        response_model=read,
        summary=f"Restore a deleted {label}",
        operation_id=f"restore_{noun}",
        response_class=Response,
    )

    def record_history(
        database: DatabaseDep,
        actor: CurrentActor,
        record_id: RecordId,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before_seq: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> Response:
        with database.reading(actor) as session:
            found = history.record_history(session, actor, record_type, record_id, limit=limit, before_seq=before_seq)
            items, next_cursor = found.items, found.next_cursor
            return json_response({"items": items, "next_cursor": next_cursor})

    router.add_api_route(
        "/{record_id}/history",
        record_history,
        methods=["GET"],
        tags=tags,
        response_model=AuditPage,
        summary=f"Field history of a {label} (from the audit trail)",
        operation_id=f"history_{noun}",
        response_class=Response,
        description="Newest first; pass `before_seq=<next_cursor>` for older entries.",
    )
    return router
