"""Contact services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.crm import records
from closeloop.crm.contacts.models import Contact
from closeloop.crm.contacts.schemas import ContactCreate, ContactUpdate
from closeloop.crm.enums import DecisionRole
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess

CONTACTS: RecordType[Contact] = records.register(
    RecordType(
        noun="contact",
        plural="contacts",
        model=Contact,
        read_fields=(
            "id",
            "account_id",
            "name",
            "title",
            "title_confirmed_on",
            "department",
            "decision_role",
            "email",
            "phone",
            "mobile",
            "wechat",
            "owner_id",
            "external_ref",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "account_id": FieldSpec(Kind.INT),
            "name": FieldSpec(Kind.STR, sortable=True),
            "title": FieldSpec(Kind.STR),
            "decision_role": FieldSpec(Kind.STR, tuple(DecisionRole)),
            "email": FieldSpec(Kind.STR),
            "mobile": FieldSpec(Kind.STR),
            "owner_id": FieldSpec(Kind.INT),
            "title_confirmed_on": FieldSpec(Kind.DATE, sortable=True),
            "external_ref": FieldSpec(Kind.STR),
        },
        references={"account_id": "account", "owner_id": "user"},
        search_fields=("name", "email", "mobile", "title"),
    )
)


def get_contact(session: Session, actor: Actor, *, contact_id: int) -> Contact:
    return records.get(session, actor, CONTACTS, contact_id, access=RowAccess.READ)


def _confirm_title(values: dict[str, Any]) -> dict[str, Any]:
    """A title written now is a title confirmed now, unless the writer says when it was confirmed."""
    if values.get("title") and "title_confirmed_on" not in values:
        values["title_confirmed_on"] = utcnow().date()
    return values


def create_contact(session: Session, actor: Actor, *, data: ContactCreate) -> Contact:
    """Create a contact, usually at an account."""
    return records.create(session, actor, CONTACTS, _confirm_title(data.model_dump(exclude_unset=True)))


def update_contact(
    session: Session,
    actor: Actor,
    *,
    contact_id: int,
    data: ContactUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Contact:
    """Change a contact; a changed title counts as confirmed today."""
    contact = get_contact(session, actor, contact_id=contact_id)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ContactUpdate) else dict(data)
    if "title" in changes and changes["title"] == contact.title:
        changes.pop("title")
    return records.update(session, actor, CONTACTS, contact, _confirm_title(changes), expected_version=expected_version)


def delete_contact(session: Session, actor: Actor, *, contact_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session, actor, CONTACTS, get_contact(session, actor, contact_id=contact_id), expected_version=expected_version
    )
