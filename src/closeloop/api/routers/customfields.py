"""Custom-field definitions (GOV-1), and each record type's schema as the organization extended it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, etag, json_response
from closeloop.api.resources import RecordId
from closeloop.api.routers.records import ENDPOINTS
from closeloop.core.errors import NotFound
from closeloop.crm import changerequests, customfields, lineage, records
from closeloop.crm.customfields import Definition, DefinitionCreate, DefinitionUpdate
from closeloop.governance.changes.models import ChangeRequest
from closeloop.governance.customfields.types import MAX_MONEY, MAX_TEXT, FieldType
from closeloop.governance.fields import masked_fields
from closeloop.governance.permissions import require

router = APIRouter(tags=["custom fields"])


@router.get(
    "/custom-fields",
    operation_id="list_custom_fields",
    summary="Custom fields you may read, per record type",
    response_class=Response,
)
def list_custom_fields(
    database: DatabaseDep,
    actor: CurrentActor,
    record_type: Annotated[str | None, Query(max_length=40, description="account, contact, lead …")] = None,
) -> Response:
    nouns = customfields.customizable_nouns()
    if record_type is not None and record_type not in nouns:
        raise NotFound("record type", record_type)
    with database.reading(actor) as session:
        items: list[dict[str, Any]] = []
        for noun in [record_type] if record_type else nouns:
            if actor.can(f"{records.record_type_for(noun).plural}:read"):
                items.extend(d.body() for d in customfields.readable(session, actor, noun))
        return json_response({"items": items})


Reason = Annotated[str | None, Query(max_length=1000, description="Why the change is needed (kept with the request)")]


def requested(session: Any, request: ChangeRequest) -> Response:
    """202 with the change request filed (its address and version), committed."""
    response = json_response(
        changerequests.body(session, request),
        status_code=202,
        headers={"Location": f"/api/v1/change-requests/{request.id}", "ETag": etag(request.version)},
    )
    commit(session)
    return response


@router.post(
    "/custom-fields",
    operation_id="create_custom_field",
    status_code=202,
    summary="Ask to add a custom field (a change request: it applies once signed off)",
    response_class=Response,
)
def create_custom_field(
    database: DatabaseDep, actor: CurrentActor, body: Annotated[DefinitionCreate, Body()], reason: Reason = None
) -> Response:
    with database.writing(actor) as session:
        return requested(session, changerequests.request_create(session, actor, body, reason=reason))


@router.get(
    "/custom-fields/{record_id}",
    operation_id="get_custom_field",
    summary="Read a custom field",
    response_class=Response,
)
def get_custom_field(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.reading(actor) as session:
        definition = customfields.get_definition(session, actor, record_id)
        return json_response(definition.body(), headers={"ETag": etag(definition.version)})


@router.patch(
    "/custom-fields/{record_id}",
    operation_id="update_custom_field",
    status_code=202,
    summary="Ask to change a custom field's labels, rules, choices or visibility (a change request)",
    response_class=Response,
)
def update_custom_field(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[DefinitionUpdate, Body()],
    reason: Reason = None,
) -> Response:
    with database.writing(actor) as session:
        request = changerequests.request_update(
            session, actor, record_id, body, expected_version=expected_version, reason=reason
        )
        return requested(session, request)


@router.delete(
    "/custom-fields/{record_id}",
    operation_id="delete_custom_field",
    status_code=202,
    summary="Ask to retire a custom field (a change request; its stored values stay)",
    response_class=Response,
)
def delete_custom_field(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    reason: Reason = None,
) -> Response:
    with database.writing(actor) as session:
        request = changerequests.request_delete(
            session, actor, record_id, expected_version=expected_version, reason=reason
        )
        return requested(session, request)


def property_schema(definition: Definition) -> dict[str, Any]:
    """The JSON Schema of one custom field's value (as written; reads give money as a string)."""
    kind = definition.field_type
    rule = definition.rule
    schema: dict[str, Any]
    if kind is FieldType.TEXT:
        schema = {"type": "string", "maxLength": rule.max_length or MAX_TEXT}
        if rule.pattern:
            schema["pattern"] = rule.pattern
    elif kind in (FieldType.NUMBER, FieldType.MONEY):
        schema = {"type": ["number", "string"]}
        if rule.min_value is not None:
            schema["minimum"] = float(rule.min_value)
        if rule.max_value is not None:
            schema["maximum"] = float(rule.max_value)
        elif kind is FieldType.MONEY:
            schema["maximum"] = float(MAX_MONEY)
    elif kind is FieldType.DATE:
        schema = {"type": "string", "format": "date"}
    elif kind is FieldType.CHOICE:
        schema = {"type": "string", "enum": list(rule.choices)}
    elif kind is FieldType.MULTI_CHOICE:
        schema = {"type": "array", "items": {"type": "string", "enum": list(rule.choices)}, "uniqueItems": True}
    elif kind in (FieldType.USER, FieldType.RECORD_LINK):
        schema = {"type": "integer", "minimum": 1}
    elif kind is FieldType.FORMULA:
        schema = {"readOnly": True, "x-formula": definition.formula}
    else:
        schema = {"type": "boolean"}
    schema = {"anyOf": [schema, {"type": "null"}]} if not definition.required else schema
    schema.update(
        {
            "title": definition.label_en,
            "x-label-zh": definition.label_zh,
            "x-field-type": kind.value,
        }
    )
    if definition.help_en or definition.help_zh:
        schema["description"] = " / ".join(text for text in (definition.help_en, definition.help_zh) if text)
    if definition.link_type:
        schema["x-link-type"] = definition.link_type
    if definition.default is not None:
        schema["default"] = definition.default
    return schema


@router.get(
    "/schema/{plural}",
    operation_id="record_schema",
    summary="The JSON Schema of a record type's create body, with your organization's custom fields",
    response_class=Response,
)
def record_schema(
    database: DatabaseDep,
    actor: CurrentActor,
    plural: Annotated[str, Path(max_length=40, description="accounts, contacts, leads …")],
) -> Response:
    endpoints = {spec.record_type.plural: spec for spec in ENDPOINTS}
    spec = endpoints.get(plural)
    if spec is None:
        raise NotFound("record type", plural)
    require(actor, f"{plural}:read")
    schema = spec.create_schema.model_json_schema()
    with database.reading(actor) as session:
        # a field the caller may not read is not theirs to know about (nor to write)
        hidden = masked_fields(session, actor, spec.record_type.noun)
        fields = customfields.readable(session, actor, spec.record_type.noun)
    for name in hidden:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    if spec.record_type.customizable:
        schema.setdefault("properties", {})["custom"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {d.name: property_schema(d) for d in fields},
            "required": [d.name for d in fields if d.required and d.default is None],
        }
    return json_response(schema)


@router.get(
    "/lineage/{noun}/{field}",
    operation_id="field_lineage",
    summary="Where a field's values come from and which formula fields read it",
    response_class=Response,
)
def field_lineage(
    database: DatabaseDep,
    actor: CurrentActor,
    noun: Annotated[str, Path(max_length=40, description="account, opportunity …")],
    field: Annotated[str, Path(max_length=80, description="a field, or custom.<name>")],
) -> Response:
    with database.reading(actor) as session:
        return json_response(lineage.lineage(session, actor, noun, field))
