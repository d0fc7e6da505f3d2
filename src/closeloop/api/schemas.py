"""Response schemas for the OpenAPI description, derived from the record types' read fields."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, create_model

from closeloop.crm.records import RecordType
from closeloop.governance.fields import FIELD_RULES

_cache: dict[str, type[BaseModel]] = {}


def _python_type(record_type: RecordType[Any], name: str) -> Any:
    column = record_type.model.__table__.c[name]
    try:
        python_type: Any = column.type.python_type
    except NotImplementedError:
        python_type = Any
    if python_type in (int, str, bool, Decimal, datetime, date, float):
        return python_type | None if column.nullable else python_type
    return Any


def read_model(record_type: RecordType[Any], *, extra: dict[str, Any] | None = None) -> type[BaseModel]:
    """``<Noun>Read``: every read field, with fields some roles cannot see marked as omissible."""
    name = "".join(part.title() for part in record_type.noun.split("_")) + "Read"
    if name in _cache:
        return _cache[name]
    masked = set(FIELD_RULES.get(record_type.noun, {}))
    definitions: dict[str, Any] = {}
    for field_name in record_type.read_fields:
        annotation = _python_type(record_type, field_name)
        if field_name in masked:
            definitions[field_name] = (
                annotation | None,
                Field(default=None, description="Left out of the response when your role may not read it"),
            )
        else:
            definitions[field_name] = (annotation, ...)
    for field_name, annotation in (extra or {}).items():
        definitions[field_name] = (annotation, ...)
    if record_type.customizable:
        definitions["custom"] = (
            dict[str, Any],
            Field(
                description="Your organization's custom fields that you may read, by name (`null` when unset); "
                "their types: `GET /api/v1/schema/" + record_type.plural + "`"
            ),
        )
    model: type[BaseModel] = create_model(name, **definitions)
    _cache[name] = model
    return model


def page_model(item: type[BaseModel]) -> type[BaseModel]:
    name = item.__name__.removesuffix("Read") + "Page"
    if name not in _cache:
        _cache[name] = create_model(name, items=(list[item], ...), next_cursor=(str | None, None))  # type: ignore[valid-type]
    return _cache[name]


class AuditEntryRead(BaseModel):
    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_user_id: int | None
    actor_token_id: int | None
    actor_label: str
    action: str
    subject_type: str
    subject_id: int | None
    changes: dict[str, list[Any]]
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_cursor: str | None = None
