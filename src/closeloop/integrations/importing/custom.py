"""Custom fields as import fields: a column whose header is a custom field's Chinese or English
label (or its name, or ``custom.<name>`` as exports write it) fills that field."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.crm import customfields
from closeloop.crm.customfields import Definition
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.fields import policy_of
from closeloop.integrations.importing.entities import entity_spec
from closeloop.integrations.importing.fields import ImportField, ValueKind

#: user and record-link fields hold ids checked against what the importer may see; files do not
#: carry those ids, so such fields are set through the API and pages, not imports
NOT_IMPORTABLE = frozenset({FieldType.USER, FieldType.RECORD_LINK, FieldType.FORMULA})


def custom_fields_for(session: Session, actor: Actor, entity: str) -> tuple[Definition, ...]:
    """The custom fields of ``entity`` that ``actor`` may fill through an import."""
    spec = entity_spec(entity)
    if not spec.record_type.customizable:
        return ()
    matrix = policy_of(session, actor)
    return tuple(
        d
        for d in customfields.readable(session, actor, spec.noun)
        if d.field_type not in NOT_IMPORTABLE and d.access(actor.role, matrix).edit
    )


def as_import_fields(definitions: Sequence[Definition]) -> tuple[ImportField, ...]:
    return tuple(
        ImportField(
            customfields.PREFIX + d.name,
            ValueKind.CUSTOM,
            (d.label_zh, d.label_en, d.name),
            required=d.required and d.default is None,
            description=d.help_en or d.help_zh or "",
        )
        for d in definitions
    )
