"""Field security (GOV-3 complete): the read/edit matrix per field and role, and asking to change a
field's row of it (a change request, signed off like a schema change)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.api.routers.customfields import Reason, requested
from closeloop.core.errors import NotFound
from closeloop.crm import changerequests, fieldsecurity
from closeloop.crm.fieldsecurity import FieldSecurityChange
from closeloop.governance.permissions import require

router = APIRouter(tags=["field security"])


@router.get(
    "/field-security",
    operation_id="get_field_security",
    summary="Who may read and edit each field, per role (the fields you may read)",
    description="Needs `schema:manage`. Each field lists every role's effective `read` and `edit`, and "
    "whether the cell is `configured` or the default (the built-in finance masks, or a custom field's "
    "`visible_to`). `editable` is false for formula fields, which are never written; `edit` is true only "
    "for the roles that write the record type at all (`writers`).",
    response_class=Response,
)
def get_field_security(
    database: DatabaseDep,
    actor: CurrentActor,
    record_type: Annotated[str | None, Query(max_length=40, description="account, opportunity …")] = None,
) -> Response:
    require(actor, "schema:manage")
    nouns = fieldsecurity.record_types(actor)
    if record_type is not None and record_type not in nouns:
        raise NotFound("record type", record_type)
    with database.reading(actor) as session:
        items: list[dict[str, Any]] = [
            fieldsecurity.matrix_of(session, actor, noun) for noun in ([record_type] if record_type else nouns)
        ]
    return json_response({"roles": list(fieldsecurity.ROLES), "items": items})


@router.put(
    "/field-security/{noun}/{field}",
    operation_id="change_field_security",
    status_code=202,
    summary="Ask to change who may read and edit a field (a change request: it applies once signed off)",
    description="`roles` maps a role to `{read, edit}`, or to `null` to return it to the default. "
    "A role may not edit what it may not read; formula fields are never edited; you may change only "
    "fields you read, and let others edit only what you edit yourself.",
    response_class=Response,
)
def change_field_security(
    database: DatabaseDep,
    actor: CurrentActor,
    noun: Annotated[str, Path(max_length=40, description="account, opportunity …")],
    field: Annotated[str, Path(max_length=80, description="a field, or custom.<name>")],
    body: Annotated[FieldSecurityChange, Body()],
    reason: Reason = None,
) -> Response:
    with database.writing(actor) as session:
        request = changerequests.request_field_security(session, actor, noun, field, body, reason=reason)
        return requested(session, request)
