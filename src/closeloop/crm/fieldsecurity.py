"""Configuring field masks (GOV-3 complete): per organization, per field, per role — read and edit.

The matrix covers each record type's stored and computed fields (but not the ones that identify
or tie a record: its id, version and timestamps, its label, its owner and its references, which
lists, links and the scope door rely on) and every custom field, formula fields included. A cell
left unset keeps its default: the built-in finance masks (:data:`FIELD_RULES`), a custom field's
``visible_to``, or "whoever reads the record". Edit implies read; a formula field is never edited.

**Who configures.** Masks are security configuration, so they move like the schema does: a person
with ``schema:manage`` *asks* for a change of one field's row (a change request, GOV-5), and it
applies only when a sales VP and an IT director — two other people — signed it off
(:mod:`closeloop.crm.changerequests`). The requester must read the field themselves, and edit it
to hand out editing (nobody grants what they do not have: :mod:`closeloop.governance.grants`);
a field they cannot read is not in their matrix at all. Every change is in the audit trail
(``field_security.updated``, besides the change request's own entries), and an applied change is
rolled back like any other.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, ActorKind
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm import customfields, records
from closeloop.crm.schemas import Schema
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.fields import CUSTOM, Access, FieldPolicy, default_access, forget_policy, policy_of
from closeloop.governance.fieldsecurity.models import FieldSecurityRule
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role, require

#: roles of the matrix, in the order pages show them
ROLES = tuple(role.value for role in Role)

_FIXED = frozenset({"id", "version", "created_at", "updated_at", "deleted_at", "organization_id", "custom"})


class Cell(Schema):
    read: bool
    edit: bool = False


class FieldSecurityChange(Schema):
    """The new cells of one field: ``roles`` maps a role to its access, or to ``null`` to go back
    to the default for that role. Roles not named keep what they have."""

    roles: Annotated[dict[str, Cell | None], Field(min_length=1, max_length=len(ROLES))]


def record_types(actor: Actor) -> list[str]:
    """Record types whose fields ``actor`` may see in the matrix (those it may read)."""
    return sorted(rt.noun for rt in records.all_record_types() if actor.can(f"{rt.plural}:read"))


def _record_type(actor: Actor, noun: str) -> records.RecordType[Any]:
    try:
        record_type = records.record_type_for(noun)
    except KeyError:
        raise NotFound("record type", noun) from None
    require(actor, f"{record_type.plural}:read")
    return record_type


def builtin_fields(record_type: records.RecordType[Any]) -> list[str]:
    """The stored and computed fields of a record type that the matrix may mask."""
    fixed = set(_FIXED) | set(record_type.references) | set(record_type.search_fields[:1])
    owner = getattr(record_type.model, "__owner_column__", None)
    if owner:
        fixed.add(owner)
    return [name for name in (*record_type.read_fields, *record_type.computed) if name not in fixed]


def _rows(session: Session, actor: Actor, noun: str) -> list[dict[str, Any]]:
    """Every maskable field of ``noun`` with its default per role: ``{field, kind, label_zh,
    label_en, defaults: {role: Access}}``."""
    record_type = records.record_type_for(noun)
    rows: list[dict[str, Any]] = [
        {
            "field": name,
            "kind": "computed" if name in record_type.computed else "stored",
            "label_zh": None,
            "label_en": None,
            "formula": False,
            "defaults": {role: default_access(role, noun, name) for role in ROLES},
        }
        for name in builtin_fields(record_type)
    ]
    if record_type.customizable:
        for definition in customfields.definitions(session, actor.organization_id, noun):
            rows.append(
                {
                    "field": CUSTOM + definition.name,
                    "kind": definition.field_type.value,
                    "label_zh": definition.label_zh,
                    "label_en": definition.label_en,
                    "formula": definition.field_type is FieldType.FORMULA,
                    "defaults": {role: definition.default_access(role) for role in ROLES},
                }
            )
    return rows


def _effective(matrix: FieldPolicy, noun: str, row: dict[str, Any], role: str) -> Access:
    access = matrix.access(role, noun, row["field"], row["defaults"][role])
    return Access(access.read, access.edit and not row["formula"])


def _readable_by(matrix: FieldPolicy, actor: Actor, noun: str, row: dict[str, Any]) -> Access:
    if actor.kind is ActorKind.SYSTEM:
        return Access(True, True)
    return _effective(matrix, noun, row, actor.role)


def matrix_of(session: Session, actor: Actor, noun: str) -> dict[str, Any]:
    """The matrix of one record type as ``actor`` may see it: the fields it may read, each with
    every role's effective access and whether the cell is configured or the default."""
    require(actor, "schema:manage")
    record_type = _record_type(actor, noun)
    matrix = policy_of(session, actor)
    # a role edits a field only if it writes the record type at all
    writes = {role: f"{record_type.plural}:write" in ROLE_PERMISSIONS[Role(role)] for role in ROLES}
    fields = []
    for row in _rows(session, actor, noun):
        if not _readable_by(matrix, actor, noun, row).read:
            continue
        roles = {}
        for role in ROLES:
            effective = _effective(matrix, noun, row, role)
            roles[role] = {
                "read": effective.read,
                "edit": effective.edit and writes[role],
                "configured": matrix.cell(role, noun, row["field"]) is not None,
            }
        fields.append(
            {
                "field": row["field"],
                "kind": row["kind"],
                "label_zh": row["label_zh"],
                "label_en": row["label_en"],
                "editable": not row["formula"],
                "roles": roles,
            }
        )
    return {"record_type": noun, "roles": list(ROLES), "writers": [r for r in ROLES if writes[r]], "fields": fields}


def check_change(
    session: Session, actor: Actor, noun: str, field: str, change: FieldSecurityChange
) -> tuple[dict[str, dict[str, bool] | None], dict[str, dict[str, bool] | None]]:
    """The new cells and the cells they replace (``None``: the default), or the 4xx the change
    would answer: an unknown record type or a field the actor cannot read is not found; an unknown
    role, edit without read, editing a formula, or handing out editing the actor lacks is a 422
    naming ``roles.<role>``; a change that changes nothing is a 422."""
    require(actor, "schema:manage")
    _record_type(actor, noun)
    matrix = policy_of(session, actor)
    row = next((r for r in _rows(session, actor, noun) if r["field"] == field), None)
    if row is None:
        raise NotFound("field", f"{noun}.{field}")
    mine = _readable_by(matrix, actor, noun, row)
    if not mine.read:
        raise NotFound("field", f"{noun}.{field}")
    new: dict[str, dict[str, bool] | None] = {}
    before: dict[str, dict[str, bool] | None] = {}
    for role, cell in change.roles.items():
        where = f"roles.{role}"
        if role not in ROLES:
            raise ValidationFailed.one(where, f"is not a role (one of: {', '.join(ROLES)})", "unknown")
        if cell is not None and cell.edit and not cell.read:
            raise ValidationFailed.one(f"{where}.edit", "a role that may not read a field may not edit it either")
        if cell is not None and cell.edit and row["formula"]:
            raise ValidationFailed.one(f"{where}.edit", f"{field} is a formula field: it is computed, never edited")
        if cell is not None and cell.edit and not mine.edit:
            raise ValidationFailed.one(
                f"{where}.edit", f"you may not edit {noun}.{field} yourself, so you cannot let others edit it"
            )
        current = matrix.cell(role, noun, field)
        before[role] = {"read": current.read, "edit": current.edit} if current is not None else None
        new[role] = {"read": cell.read, "edit": cell.edit} if cell is not None else None
    if new == before:
        raise ValidationFailed.one("roles", "changes nothing", "empty")
    return new, before


def impact(
    session: Session, actor: Actor, noun: str, field: str, new: dict[str, dict[str, bool] | None]
) -> dict[str, Any]:
    """Which roles gain or lose reading or editing the field, the formula fields reading it (masked
    for the roles that lose it), and the published metrics and dashboards built on it."""
    from closeloop.crm import lineage

    matrix = policy_of(session, actor)
    row = next(r for r in _rows(session, actor, noun) if r["field"] == field)
    gaining: list[str] = []
    losing: list[str] = []
    for role, cell in new.items():
        now = _effective(matrix, noun, row, role)
        after = Access(cell["read"], cell["edit"]) if cell is not None else row["defaults"][role]
        if after.read and not now.read:
            gaining.append(role)
        if now.read and not after.read:
            losing.append(role)
    return {
        "roles_gaining_read": sorted(gaining),
        "roles_losing_read": sorted(losing),
        "dependents": lineage.downstream(session, actor.organization_id, noun, field),
        **lineage.metrics_downstream(noun, field),
    }


def apply_change(
    session: Session, actor: Actor, noun: str, field: str, cells: dict[str, dict[str, bool] | None]
) -> None:
    """Store the cells (``None`` removes a role's cell: back to the default) and audit the change.
    Called when a change request is signed off (as the system)."""
    require(actor, "schema:manage")
    _record_type(actor, noun)
    if field not in {r["field"] for r in _rows(session, actor, noun)}:
        raise NotFound("field", f"{noun}.{field}")
    existing = {
        row.role: row
        for row in session.scalars(
            select(FieldSecurityRule).where(
                tenant_clause(actor.organization_id, FieldSecurityRule),
                FieldSecurityRule.record_type == noun,
                FieldSecurityRule.field == field,
            )
        )
    }
    changes: dict[str, list[Any]] = {}
    for role, cell in sorted(cells.items()):
        row = existing.get(role)
        before = {"read": row.can_read, "edit": row.can_edit} if row is not None else None
        if cell is None:
            if row is not None:
                session.delete(row)  # through the ORM: the flush gives the organization a new stamp
        elif row is None:
            session.add(
                FieldSecurityRule(
                    organization_id=actor.organization_id,
                    record_type=noun,
                    field=field,
                    role=role,
                    can_read=cell["read"],
                    can_edit=cell["edit"],
                )
            )
        else:
            row.can_read, row.can_edit = cell["read"], cell["edit"]
        if before != cell:
            changes[role] = [before, cell]
    session.flush()
    forget_policy(session)
    customfields.forget_definitions(session)
    audit.record(
        session,
        actor,
        "field_security.updated",
        subject_type="field_security",
        subject_id=None,
        changes={"record_type": [None, noun], "field": [None, field], **{f"roles.{r}": v for r, v in changes.items()}},
    )


__all__ = [
    "ROLES",
    "Cell",
    "FieldSecurityChange",
    "apply_change",
    "builtin_fields",
    "check_change",
    "impact",
    "matrix_of",
    "record_types",
]
