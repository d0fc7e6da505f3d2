"""A record's field history from the audit trail, as the caller may see it (API and pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.crm import records
from closeloop.crm.records import RecordType
from closeloop.db.scope import RowAccess
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require


@dataclass(frozen=True)
class History:
    items: list[dict[str, Any]]
    #: pass as ``before_seq`` for older entries; ``None`` at the start of the record's history
    next_cursor: str | None


def record_history(
    session: Session,
    actor: Actor,
    record_type: RecordType[Any],
    record_id: int,
    *,
    limit: int = 100,
    before_seq: int | None = None,
) -> History:
    """Entries about one record the actor can see, newest first; masked fields are dropped from
    each entry's changes, and entries that only touched masked fields are left out."""
    require(actor, "history:read")
    record = records.get(session, actor, record_type, record_id, access=RowAccess.READ)
    hidden = records.masked(session, actor, record_type.noun)
    entries = audit.history(
        session, actor, subject_type=record_type.noun, subject_id=record.id, limit=limit, before_seq=before_seq
    )
    items = [body for entry in entries if (body := audit.entry_body(entry, hidden)) is not None]
    return History(items, str(entries[-1].seq) if len(entries) == limit else None)
