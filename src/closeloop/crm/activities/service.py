"""Activity services: interaction events are the unit of management (CRM-3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.activities.models import Activity
from closeloop.crm.activities.schemas import ActivityCreate, ActivityUpdate
from closeloop.crm.enums import ActivityKind, Direction
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess

ACTIVITIES: RecordType[Activity] = records.register(
    RecordType(
        noun="activity",
        plural="activities",
        model=Activity,
        read_fields=(
            "id",
            "kind",
            "direction",
            "subject",
            "occurred_at",
            "user_id",
            "account_id",
            "contact_id",
            "opportunity_id",
            "lead_id",
            "is_replied",
            "replied_at",
            "duration_minutes",
            "outcome",
            "content_ref",
            "notes",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "kind": FieldSpec(Kind.STR, tuple(ActivityKind)),
            "direction": FieldSpec(Kind.STR, tuple(Direction)),
            "occurred_at": FieldSpec(Kind.DATETIME, sortable=True),
            "user_id": FieldSpec(Kind.INT),
            "account_id": FieldSpec(Kind.INT),
            "contact_id": FieldSpec(Kind.INT),
            "opportunity_id": FieldSpec(Kind.INT),
            "lead_id": FieldSpec(Kind.INT),
            "is_replied": FieldSpec(Kind.BOOL),
            "subject": FieldSpec(Kind.STR),
        },
        references={
            "user_id": "user",
            "account_id": "account",
            "contact_id": "contact",
            "opportunity_id": "opportunity",
            "lead_id": "lead",
        },
        search_fields=("subject", "outcome", "notes"),
        default_sort="-occurred_at",
    )
)


def _check_reply(values: Mapping[str, Any]) -> None:
    direction = values.get("direction")
    if values.get("is_replied") is not None and direction == Direction.INBOUND:
        raise ValidationFailed.one("is_replied", "applies to outbound interactions only")
    replied_at, occurred_at = values.get("replied_at"), values.get("occurred_at")
    if replied_at is not None and occurred_at is not None and as_utc(replied_at) < as_utc(occurred_at):
        raise ValidationFailed.one("replied_at", "is before the interaction itself")


def get_activity(session: Session, actor: Actor, *, activity_id: int) -> Activity:
    return records.get(session, actor, ACTIVITIES, activity_id, access=RowAccess.READ)


def log_activity(session: Session, actor: Actor, *, data: ActivityCreate) -> Activity:
    """Record an interaction event; it happened now, by the actor, unless said otherwise."""
    values = data.model_dump(exclude_unset=True)
    values.setdefault("occurred_at", utcnow())
    values.setdefault("direction", Direction.OUTBOUND)
    if values.get("replied_at") is not None:
        values.setdefault("is_replied", True)
    _check_reply(values)
    return records.create(session, actor, ACTIVITIES, values)


def update_activity(
    session: Session,
    actor: Actor,
    *,
    activity_id: int,
    data: ActivityUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Activity:
    """Correct an interaction event (e.g. mark an email as replied)."""
    activity = get_activity(session, actor, activity_id=activity_id)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ActivityUpdate) else dict(data)
    if changes.get("replied_at") is not None and "is_replied" not in changes:
        changes["is_replied"] = True
    merged = {name: getattr(activity, name) for name in ("direction", "is_replied", "replied_at", "occurred_at")}
    merged.update(changes)
    _check_reply(merged)
    return records.update(session, actor, ACTIVITIES, activity, changes, expected_version=expected_version)


def delete_activity(session: Session, actor: Actor, *, activity_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session,
        actor,
        ACTIVITIES,
        get_activity(session, actor, activity_id=activity_id),
        expected_version=expected_version,
    )
