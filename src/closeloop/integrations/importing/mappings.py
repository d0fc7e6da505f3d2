"""Saved import mappings, guarded by the change circuit breaker (GOV-5).

A recurring feed — a dealer's weekly sell-through sheet, an exhibition's lead list — is imported
with a named mapping (file column → field). Adding, changing or deleting one is a change request:
checked when asked (every field must exist and be importable for the entity), showing its impact
(the columns added, removed or re-pointed, and the imports that used the mapping in the last 90
days), applied only after the required sign-offs, and undone by a new signed-off request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, func
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from closeloop.crm import changerequests
from closeloop.db.scope import RowAccess, visible
from closeloop.governance.audit import service as audit
from closeloop.governance.changes.models import ChangeRequest, ChangeStatus
from closeloop.governance.permissions import require
from closeloop.integrations.importing.custom import as_import_fields, custom_fields_for
from closeloop.integrations.importing.entities import entity_spec
from closeloop.integrations.importing.fields import check_mapping
from closeloop.integrations.importing.models import ImportJob, ImportMapping

CREATE, UPDATE, DELETE = "import_mapping.create", "import_mapping.update", "import_mapping.delete"
#: how far back a change request looks for imports that used the mapping
RECENT = timedelta(days=90)

Columns = dict[str, str]


class MappingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, description="unique in the organization, e.g. 经销商周报")
    entity: str = Field(min_length=1, max_length=40, description="accounts, contacts, leads, opportunities, …")
    columns: Columns = Field(description="file column → field name", min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("may not be blank")
        return value


class MappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: Columns | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=2000)


def _check_columns(session: Session, actor: Actor, entity: str, columns: Columns) -> None:
    """Every column points at a field the entity takes (custom fields included), each field once."""
    entity_spec(entity)
    extra = as_import_fields(custom_fields_for(session, actor, entity))
    check_mapping(list(columns), entity, columns, extra)


def _read(actor: Actor) -> Select[ImportMapping]:
    require(actor, "imports:run")
    return visible(actor, ImportMapping, access=RowAccess.READ)


def list_mappings(session: Session, actor: Actor, *, entity: str | None = None) -> list[ImportMapping]:
    query = _read(actor)
    if entity is not None:
        query = query.where(ImportMapping.entity == entity)
    return list(session.scalars(query.order_by(ImportMapping.entity, ImportMapping.name)))


def get_mapping(session: Session, actor: Actor, mapping_id: int) -> ImportMapping:
    found = session.scalar(_read(actor).where(ImportMapping.id == mapping_id))
    if found is None:
        raise NotFound("import mapping", mapping_id)
    return found


def find_mapping(session: Session, actor: Actor, name: str) -> ImportMapping:
    found = session.scalar(_read(actor).where(ImportMapping.name == name))
    if found is None:
        raise ValidationFailed.one("mapping_name", f"there is no saved import mapping named '{name}'", "not_found")
    return found


def body(mapping: ImportMapping) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "name": mapping.name,
        "entity": mapping.entity,
        "columns": mapping.columns,
        "description": mapping.description,
        "version": mapping.version,
        "created_at": mapping.created_at,
        "updated_at": mapping.updated_at,
    }


def _as_created(mapping: ImportMapping) -> dict[str, Any]:
    return {
        "name": mapping.name,
        "entity": mapping.entity,
        "columns": mapping.columns,
        **({"description": mapping.description} if mapping.description else {}),
    }


def _recent_jobs(session: Session, actor: Actor, mapping_id: int) -> int:
    since = utcnow() - RECENT
    query = visible(actor, ImportJob, access=RowAccess.READ).where(
        ImportJob.mapping_id == mapping_id, ImportJob.created_at >= since
    )
    return int(session.scalar(query.with_only_columns(func.count())) or 0)


def _column_changes(before: Columns, after: Columns) -> dict[str, Any]:
    return {
        "columns_added": sorted(set(after) - set(before)),
        "columns_removed": sorted(set(before) - set(after)),
        "columns_repointed": sorted(column for column in set(before) & set(after) if before[column] != after[column]),
    }


def _name_taken(session: Session, actor: Actor, name: str) -> bool:
    if (
        session.scalar(visible(actor, ImportMapping, access=RowAccess.READ).where(ImportMapping.name == name))
        is not None
    ):
        return True
    pending = session.scalars(
        visible(actor, ChangeRequest, access=RowAccess.READ).where(
            ChangeRequest.kind == CREATE, ChangeRequest.status == ChangeStatus.PENDING
        )
    )
    return any(request.payload.get("name") == name for request in pending)


def _to_change(session: Session, actor: Actor, mapping_id: int, expected_version: int | None) -> ImportMapping:
    """The mapping a schema manager asks to change, as the version they saw (else 412)."""
    require(actor, "schema:manage")
    mapping = get_mapping(session, actor, mapping_id)
    if expected_version is not None and mapping.version != expected_version:
        raise PreconditionFailed()
    return mapping


def request_create(
    session: Session, actor: Actor, data: MappingCreate, *, reason: str | None = None, rolls_back_id: int | None = None
) -> ChangeRequest:
    """Ask to save a mapping."""
    require(actor, "schema:manage")
    _check_columns(session, actor, data.entity, data.columns)
    if _name_taken(session, actor, data.name):
        raise Conflict(f"An import mapping named '{data.name}' exists or is waiting for sign-off", code="duplicate")
    return changerequests.file_request(
        session,
        actor,
        kind=CREATE,
        payload=data.model_dump(mode="json", exclude_none=True),
        summary=f"Save import mapping {data.name} for {data.entity} ({len(data.columns)} columns)",
        impact={**_column_changes({}, data.columns), "recent_imports": 0},
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


def request_update(
    session: Session,
    actor: Actor,
    mapping_id: int,
    data: MappingUpdate,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to change a mapping's columns or description."""
    mapping = _to_change(session, actor, mapping_id, expected_version)
    changes = data.model_dump(mode="json", exclude_unset=True)
    changes = {name: value for name, value in changes.items() if value != getattr(mapping, name)}
    if not changes:
        raise ValidationFailed.one("body", "changes nothing", "empty")
    if "columns" in changes:
        _check_columns(session, actor, mapping.entity, changes["columns"])
    before = {name: getattr(mapping, name) for name in changes}
    return changerequests.file_request(
        session,
        actor,
        kind=UPDATE,
        target_id=mapping.id,
        payload=changes,
        before=before,
        summary=f"Change {', '.join(sorted(changes))} of import mapping {mapping.name}",
        impact={
            **_column_changes(mapping.columns, changes.get("columns", mapping.columns)),
            "recent_imports": _recent_jobs(session, actor, mapping.id),
        },
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


def request_delete(
    session: Session,
    actor: Actor,
    mapping_id: int,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to delete a mapping."""
    mapping = _to_change(session, actor, mapping_id, expected_version)
    return changerequests.file_request(
        session,
        actor,
        kind=DELETE,
        target_id=mapping.id,
        payload={},
        before=_as_created(mapping),
        summary=f"Delete import mapping {mapping.name} ({mapping.entity})",
        impact={**_column_changes(mapping.columns, {}), "recent_imports": _recent_jobs(session, actor, mapping.id)},
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


# --- carried out by the change process ------------------------------------------------------------


def _apply_create(session: Session, system: Actor, request: ChangeRequest) -> int:
    data = MappingCreate.model_validate(request.payload)
    _check_columns(session, system, data.entity, data.columns)
    if (
        session.scalar(visible(system, ImportMapping, access=RowAccess.WRITE).where(ImportMapping.name == data.name))
        is not None
    ):
        raise Conflict(f"An import mapping named '{data.name}' exists", code="duplicate")
    mapping = ImportMapping(
        organization_id=system.organization_id,
        name=data.name,
        entity=data.entity,
        columns=data.columns,
        description=data.description,
    )
    session.add(mapping)
    session.flush()
    audit.record(
        session,
        system,
        "import_mapping.created",
        subject_type="import_mapping",
        subject_id=mapping.id,
        changes=audit.diff({}, _as_created(mapping)),
    )
    return mapping.id


def _target(session: Session, system: Actor, request: ChangeRequest) -> ImportMapping:
    mapping = session.scalar(
        visible(system, ImportMapping, access=RowAccess.WRITE).where(ImportMapping.id == request.target_id)
    )
    if mapping is None:
        raise NotFound("import mapping", request.target_id)
    return mapping


def _apply_update(session: Session, system: Actor, request: ChangeRequest) -> int:
    mapping = _target(session, system, request)
    data = MappingUpdate.model_validate(request.payload)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "columns" in changes:
        _check_columns(session, system, mapping.entity, changes["columns"])
    before = {name: getattr(mapping, name) for name in changes}
    for name, value in changes.items():
        setattr(mapping, name, value)
    session.flush()
    audit.record(
        session,
        system,
        "import_mapping.updated",
        subject_type="import_mapping",
        subject_id=mapping.id,
        changes=audit.diff(before, changes),
    )
    return mapping.id


def _apply_delete(session: Session, system: Actor, request: ChangeRequest) -> int:
    mapping = _target(session, system, request)
    before = _as_created(mapping)
    session.delete(mapping)
    session.flush()
    audit.record(
        session,
        system,
        "import_mapping.deleted",
        subject_type="import_mapping",
        subject_id=mapping.id,
        changes=audit.diff(before, {}),
    )
    return mapping.id


def _roll_back(session: Session, actor: Actor, applied: ChangeRequest, reason: str) -> ChangeRequest:
    assert applied.target_id is not None
    if applied.kind == CREATE:
        return request_delete(session, actor, applied.target_id, reason=reason, rolls_back_id=applied.id)
    if applied.kind == UPDATE:
        data = MappingUpdate.model_validate(applied.before or {})
        return request_update(session, actor, applied.target_id, data, reason=reason, rolls_back_id=applied.id)
    return request_create(
        session, actor, MappingCreate.model_validate(applied.before or {}), reason=reason, rolls_back_id=applied.id
    )


for _kind, _apply in ((CREATE, _apply_create), (UPDATE, _apply_update), (DELETE, _apply_delete)):
    changerequests.register_kind(_kind, changerequests.ChangeKind(apply=_apply, rollback=_roll_back))


__all__ = [
    "CREATE",
    "DELETE",
    "UPDATE",
    "MappingCreate",
    "MappingUpdate",
    "body",
    "find_mapping",
    "get_mapping",
    "list_mappings",
    "request_create",
    "request_delete",
    "request_update",
]
