"""Saved import mappings: read them; adding, changing or deleting one files a change request (GOV-5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, etag, json_response
from closeloop.api.resources import RecordId
from closeloop.api.routers.customfields import Reason, requested
from closeloop.integrations.importing import mappings
from closeloop.integrations.importing.mappings import MappingCreate, MappingUpdate

router = APIRouter(tags=["imports"])


@router.get(
    "/import-mappings",
    operation_id="list_import_mappings",
    summary="Saved import mappings (column → field), per entity",
    response_class=Response,
)
def list_import_mappings(
    database: DatabaseDep,
    actor: CurrentActor,
    entity: Annotated[str | None, Query(max_length=40, description="accounts, leads, …")] = None,
) -> Response:
    with database.reading(actor) as session:
        return json_response(
            {"items": [mappings.body(m) for m in mappings.list_mappings(session, actor, entity=entity)]}
        )


@router.get(
    "/import-mappings/{record_id}",
    operation_id="get_import_mapping",
    summary="One saved import mapping",
    response_class=Response,
)
def get_import_mapping(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.reading(actor) as session:
        mapping = mappings.get_mapping(session, actor, record_id)
        return json_response(mappings.body(mapping), headers={"ETag": etag(mapping.version)})


@router.post(
    "/import-mappings",
    status_code=202,
    operation_id="request_import_mapping",
    summary="Ask to save an import mapping (a change request: it applies after the sign-offs)",
    response_class=Response,
)
def request_import_mapping(
    database: DatabaseDep, actor: CurrentActor, body: Annotated[MappingCreate, Body()], reason: Reason = None
) -> Response:
    with database.writing(actor) as session:
        return requested(session, mappings.request_create(session, actor, body, reason=reason))


@router.patch(
    "/import-mappings/{record_id}",
    status_code=202,
    operation_id="request_import_mapping_change",
    summary="Ask to change a saved import mapping (a change request showing the columns affected)",
    response_class=Response,
)
def request_import_mapping_change(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[MappingUpdate, Body()],
    reason: Reason = None,
) -> Response:
    with database.writing(actor) as session:
        request = mappings.request_update(
            session, actor, record_id, body, expected_version=expected_version, reason=reason
        )
        return requested(session, request)


@router.delete(
    "/import-mappings/{record_id}",
    status_code=202,
    operation_id="request_import_mapping_deletion",
    summary="Ask to delete a saved import mapping (a change request)",
    response_class=Response,
)
def request_import_mapping_deletion(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    reason: Reason = None,
) -> Response:
    with database.writing(actor) as session:
        request = mappings.request_delete(session, actor, record_id, expected_version=expected_version, reason=reason)
        return requested(session, request)
