"""What a person's home page shows about their own work: open tasks, and the records they touched
recently (from the audit trail). Each read stays within the actor's row scope: a record the
actor can no longer see (reassigned, deleted) is left out, not named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.crm.contacts.models import Contact
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.tasks.models import Task, TaskStatus
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.audit.models import AuditEntry

#: the record types "recently touched" names, with their models (in the order they are looked up)
TOUCHABLE: dict[str, Any] = {"account": Account, "opportunity": Opportunity, "contact": Contact, "lead": Lead}
#: how far back "recently" reaches in the audit trail
RECENT_DAYS = 30


@dataclass(frozen=True, slots=True)
class OpenTask:
    id: int
    title: str
    due_on: date | None
    link: str | None
    description: str | None = None
    source: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None

    @property
    def is_overdue(self) -> bool:
        return self.due_on is not None and self.due_on < utcnow().date()


@dataclass(frozen=True, slots=True)
class Touched:
    """A record the actor created or changed, as they may see it now."""

    subject_type: str
    subject_id: int
    name: str
    action: str
    at: datetime


def my_open_tasks(session: Session, actor: Actor, *, limit: int = 8) -> tuple[list[OpenTask], int]:
    """The actor's own open tasks, those due soonest first (undated last); and how many are open."""
    if actor.user_id is None or not actor.can("tasks:read"):
        return [], 0
    mine = (
        visibility_clause(actor, Task, access=RowAccess.READ),
        Task.owner_id == actor.user_id,
        Task.status == TaskStatus.OPEN.value,
    )
    rows = session.execute(
        select(
            Task.id,
            Task.title,
            Task.due_on,
            Task.link,
            Task.description,
            Task.source,
            Task.subject_type,
            Task.subject_id,
        )
        .where(*mine)
        .order_by(Task.due_on.is_(None), Task.due_on, Task.id)
        .limit(limit)
    )
    total = int(session.scalar(select(func.count()).select_from(Task).where(*mine)) or 0)
    return [OpenTask(*row) for row in rows], total


def recently_touched(session: Session, actor: Actor, *, limit: int = 8, now: datetime | None = None) -> list[Touched]:
    """Records the actor created or changed in the last :data:`RECENT_DAYS` days, newest first,
    one line per record (its latest change), named as the actor may see it now."""
    if actor.user_id is None:
        return []
    readable = [noun for noun, model in TOUCHABLE.items() if actor.can(f"{model.__tablename__}:read")]
    if not readable:
        return []
    since = (now or utcnow()) - timedelta(days=RECENT_DAYS)
    entries = session.execute(
        select(AuditEntry.subject_type, AuditEntry.subject_id, AuditEntry.action, AuditEntry.occurred_at)
        .where(
            tenant_clause(actor.organization_id, AuditEntry),
            AuditEntry.occurred_at >= since,
            AuditEntry.actor_user_id == actor.user_id,
            AuditEntry.subject_type.in_(readable),
            AuditEntry.subject_id.is_not(None),
        )
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())
        .limit(limit * 10)
    )
    latest: dict[tuple[str, int], tuple[str, datetime]] = {}
    for subject_type, subject_id, action, occurred_at in entries:
        key = (subject_type, subject_id or 0)
        if key not in latest:
            latest[key] = (action, occurred_at)
    wanted: dict[str, list[int]] = {}
    for subject_type, subject_id in latest:
        wanted.setdefault(subject_type, []).append(subject_id)
    names: dict[tuple[str, int], str] = {}
    for subject_type, ids in wanted.items():
        model = TOUCHABLE[subject_type]
        found = session.execute(
            select(model.id, model.name).where(
                visibility_clause(actor, model, access=RowAccess.READ), model.id.in_(sorted(ids))
            )
        )
        names.update({(subject_type, record_id): name for record_id, name in found})
    touched = [
        Touched(subject_type, subject_id, names[(subject_type, subject_id)], action, at)
        for (subject_type, subject_id), (action, at) in latest.items()
        if (subject_type, subject_id) in names
    ]
    return touched[:limit]
