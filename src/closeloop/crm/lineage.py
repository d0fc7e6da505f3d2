"""Lineage (GOV-4, first part): for any field, where its values come from and what is computed
from it — derived from the definitions (formula fields' compiled inputs), never typed by hand.

Upstream of a formula field are the stored fields its formula reads (on the record and on the
related records it aggregates); its transformation is the normalized formula, its refresh is
"computed when read", its owner whoever asked for it. Downstream of any field are the formula
fields that read it — the answer to "what breaks if I change this?", which change requests show
as their impact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound
from closeloop.crm import customfields, formulas, records
from closeloop.crm.customfields import PREFIX, Definition
from closeloop.db.scope import visible
from closeloop.governance.changes.models import ChangeRequest, ChangeStatus
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.formulas.errors import FormulaError
from closeloop.governance.permissions import require
from closeloop.org import service as org_service


@dataclass(frozen=True, slots=True)
class FormulaNode:
    definition: Definition
    inputs: frozenset[tuple[str, str]]
    sources: frozenset[str]
    normalized: str


def formula_nodes(session: Session, organization_id: int) -> list[FormulaNode]:
    """Every formula field of the organization with what it reads (compiled as the system)."""
    system = org_service.system_actor(organization_id)
    nodes = []
    for noun in customfields.customizable_nouns():
        for definition in customfields.definitions(session, organization_id, noun):
            if definition.field_type is not FieldType.FORMULA or definition.formula is None:
                continue
            try:
                checked = formulas.check(system, noun, definition.formula, session)
            except FormulaError:
                continue  # a formula that no longer compiles reads nothing (and shows no value)
            nodes.append(FormulaNode(definition, checked.inputs, checked.sources, checked.normalized))
    return nodes


def downstream(session: Session, organization_id: int, noun: str, field: str) -> list[dict[str, Any]]:
    """The formula fields that read ``noun.field``."""
    return [
        {
            "record_type": node.definition.record_type,
            "field": PREFIX + node.definition.name,
            "label_zh": node.definition.label_zh,
            "label_en": node.definition.label_en,
        }
        for node in formula_nodes(session, organization_id)
        if (noun, field) in node.inputs
    ]


def _owner(session: Session, actor: Actor, definition: Definition) -> int | None:
    """Who asked for the field (the requester of the change request that created it)."""
    return session.scalar(
        visible(actor, ChangeRequest)
        .where(
            ChangeRequest.kind == "custom_field.create",
            ChangeRequest.target_id == definition.id,
            ChangeRequest.status == ChangeStatus.APPLIED.value,
        )
        .with_only_columns(ChangeRequest.requested_by_id)
        .limit(1)
    )


def lineage(session: Session, actor: Actor, noun: str, field: str) -> dict[str, Any]:
    """The lineage of one field as ``actor`` may see it (a field they cannot read is not found)."""
    try:
        record_type = records.record_type_for(noun)
    except KeyError:
        raise NotFound("record type", noun) from None
    require(actor, f"{record_type.plural}:read")
    if field in records.masked(session, actor, noun):
        raise NotFound("field", f"{noun}.{field}")
    node: dict[str, Any] = {"record_type": noun, "field": field}
    upstream: list[dict[str, str]] = []
    if field.startswith(PREFIX):
        definition = next((d for d in customfields.readable(session, actor, noun) if PREFIX + d.name == field), None)
        if definition is None:
            raise NotFound("field", f"{noun}.{field}")
        node |= {
            "kind": definition.field_type.value,
            "label_zh": definition.label_zh,
            "label_en": definition.label_en,
            "owner_id": _owner(session, actor, definition),
        }
        if definition.field_type is FieldType.FORMULA:
            found = next(
                (n for n in formula_nodes(session, actor.organization_id) if n.definition.id == definition.id), None
            )
            node |= {
                "transformation": found.normalized if found else definition.formula,
                "refresh": "computed when the record is read",
                "sources": sorted(found.sources) if found else [],
            }
            upstream = [{"record_type": n, "field": f} for n, f in sorted(found.inputs)] if found else []
        else:
            node |= {"refresh": "entered by people and imports"}
    else:
        if field not in record_type.model.__table__.c and field not in record_type.computed:
            raise NotFound("field", f"{noun}.{field}")
        node |= {"kind": "stored", "refresh": "entered by people and imports"}
    hidden = {n: records.masked(session, actor, n) for n in {u["record_type"] for u in upstream}}
    return {
        **node,
        "upstream": [u for u in upstream if u["field"] not in hidden[u["record_type"]]],
        "downstream": downstream(session, actor.organization_id, noun, field),
    }


__all__ = ["downstream", "formula_nodes", "lineage"]
