"""Task services: the to-dos people make for themselves or their team, and those the system opens
and closes in bulk (the data-quality loop)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.crm.tasks.models import Task, TaskStatus
from closeloop.crm.tasks.schemas import TaskCreate, TaskUpdate
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.audit import service as audit

TASKS: RecordType[Task] = records.register(
    RecordType(
        noun="task",
        plural="tasks",
        model=Task,
        read_fields=(
            "id",
            "title",
            "description",
            "status",
            "due_on",
            "subject_type",
            "subject_id",
            "link",
            "source",
            "owner_id",
            "closed_at",
            "closed_by_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "title": FieldSpec(Kind.STR, sortable=True),
            "status": FieldSpec(Kind.STR, tuple(TaskStatus), sortable=True),
            "due_on": FieldSpec(Kind.DATE, sortable=True),
            "subject_type": FieldSpec(Kind.STR),
            "subject_id": FieldSpec(Kind.INT),
            "source": FieldSpec(Kind.STR),
            "owner_id": FieldSpec(Kind.INT),
            "closed_at": FieldSpec(Kind.DATETIME, sortable=True),
        },
        references={"owner_id": "user"},
        search_fields=("title", "description"),
    )
)

#: at most this many ids per ``IN (...)`` list
_CHUNK = 5000


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _check_subject(session: Session, actor: Actor, values: Mapping[str, Any]) -> None:
    """A task about a record must name a kind of record and one the actor can see (422 otherwise)."""
    subject_type, subject_id = values.get("subject_type"), values.get("subject_id")
    if subject_type is None and subject_id is None:
        return
    if subject_type is None or subject_id is None:
        missing = "subject_type" if subject_type is None else "subject_id"
        raise ValidationFailed.one(missing, "give both subject_type and subject_id, or neither", "required")
    try:
        target = records.record_type_for(subject_type)
    except KeyError:
        raise ValidationFailed.one("subject_type", f"'{subject_type}' is not a kind of record", "unknown") from None
    model = target.model
    if (
        session.scalar(
            select(model.id).where(visibility_clause(actor, model, access=RowAccess.READ), model.id == subject_id)
        )
        is None
    ):
        raise ValidationFailed.one("subject_id", f"no {subject_type} {subject_id} that you can see", "not_found")


def _closing(values: dict[str, Any], previous: str | None, actor: Actor) -> dict[str, Any]:
    status = values.get("status")
    if status == TaskStatus.DONE and previous != TaskStatus.DONE:
        values["closed_at"] = utcnow()
        values["closed_by_id"] = actor.user_id
    elif status == TaskStatus.OPEN and previous == TaskStatus.DONE:
        values["closed_at"] = None
        values["closed_by_id"] = None
    return values


def get_task(session: Session, actor: Actor, *, task_id: int) -> Task:
    return records.get(session, actor, TASKS, task_id, access=RowAccess.READ)


def create_task(session: Session, actor: Actor, *, data: TaskCreate) -> Task:
    """Make a task (for oneself by default, or for someone in one's reach), optionally about a record."""
    values = data.model_dump(exclude_unset=True)
    records.require_write(actor, TASKS)
    _check_subject(session, actor, values)
    values["status"] = TaskStatus.OPEN
    return records.create(session, actor, TASKS, values)


def update_task(
    session: Session,
    actor: Actor,
    *,
    task_id: int,
    data: TaskUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Task:
    """Change a task; marking it done stamps who closed it and when, reopening clears both."""
    task = get_task(session, actor, task_id=task_id)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, TaskUpdate) else dict(data)
    if "subject_type" in changes or "subject_id" in changes:
        _check_subject(
            session,
            actor,
            {
                "subject_type": changes.get("subject_type", task.subject_type),
                "subject_id": changes.get("subject_id", task.subject_id),
            },
        )
    return records.update(
        session, actor, TASKS, task, _closing(changes, task.status, actor), expected_version=expected_version
    )


def delete_task(session: Session, actor: Actor, *, task_id: int, expected_version: int | None = None) -> None:
    records.delete(session, actor, TASKS, get_task(session, actor, task_id=task_id), expected_version=expected_version)


# --- tasks the system opens and closes in bulk -------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task the system opens for ``owner_id`` (``None``: nobody could be found to take it)."""

    title: str
    owner_id: int | None
    subject_type: str
    subject_id: int
    link: str
    source: str
    description: str | None = None
    due_on: date | None = None


def open_system_tasks(session: Session, actor: Actor, tasks: Sequence[NewTask]) -> list[int]:
    """Insert ``tasks`` in bulk, audited in bulk (one ``task.created`` entry each); their ids in order."""
    if not tasks:
        return []
    now = utcnow()
    rows = [
        {
            "organization_id": actor.organization_id,
            "title": task.title[:200],
            "description": task.description,
            "status": TaskStatus.OPEN.value,
            "due_on": task.due_on,
            "subject_type": task.subject_type,
            "subject_id": task.subject_id,
            "link": task.link,
            "source": task.source,
            "owner_id": task.owner_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for task in tasks
    ]
    ids: list[int] = []
    for start in range(0, len(rows), _CHUNK):
        statement = insert(Task).returning(Task.id, sort_by_parameter_order=True)
        ids.extend(session.scalars(statement, rows[start : start + _CHUNK]))
    audit.record_many(
        session,
        actor,
        [
            (
                "task.created",
                "task",
                task_id,
                audit.diff(
                    {},
                    {
                        "title": row["title"],
                        "status": row["status"],
                        "subject_type": row["subject_type"],
                        "subject_id": row["subject_id"],
                        "owner_id": row["owner_id"],
                        "source": row["source"],
                        "link": row["link"],
                        "due_on": row["due_on"],
                    },
                ),
            )
            for task_id, row in zip(ids, rows, strict=True)
        ],
    )
    return ids


def _set_status(session: Session, actor: Actor, task_ids: Sequence[int], status: TaskStatus) -> list[int]:
    """Move open (or done) tasks of the organization to ``status``; the ids that actually moved."""
    previous = TaskStatus.DONE if status is TaskStatus.OPEN else TaskStatus.OPEN
    moved: list[int] = []
    for chunk in _chunks(sorted(set(task_ids))):
        moved.extend(
            session.scalars(
                select(Task.id).where(
                    tenant_clause(actor.organization_id, Task), Task.id.in_(chunk), Task.status == previous
                )
            )
        )
    if not moved:
        return []
    now = utcnow()
    closing = status is TaskStatus.DONE
    for chunk in _chunks(moved):
        session.execute(
            update(Task)
            .where(tenant_clause(actor.organization_id, Task), Task.id.in_(chunk))
            .values(
                status=status.value,
                closed_at=now if closing else None,
                closed_by_id=actor.user_id if closing else None,
                version=Task.version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    action = "task.closed" if closing else "task.reopened"
    change: audit.Changes = {"status": [previous.value, status.value]}
    if closing:
        change["closed_at"] = [None, audit.json_safe(now)]
    audit.record_many(session, actor, [(action, "task", task_id, change) for task_id in moved])
    return moved


def close_system_tasks(session: Session, actor: Actor, task_ids: Sequence[int]) -> list[int]:
    """Mark open tasks done, closed by ``actor`` (the system); audited in bulk. Returns the ids closed."""
    return _set_status(session, actor, task_ids, TaskStatus.DONE)


def reopen_system_tasks(session: Session, actor: Actor, task_ids: Sequence[int]) -> list[int]:
    """Reopen tasks marked done while what they asked for is still not done; audited in bulk."""
    return _set_status(session, actor, task_ids, TaskStatus.OPEN)


def reassign_system_tasks(session: Session, actor: Actor, moves: Mapping[int, tuple[int | None, int | None]]) -> None:
    """Hand tasks to new owners (``{task_id: (old owner, new owner)}``), audited in bulk."""
    if not moves:
        return
    by_owner: dict[int | None, list[int]] = {}
    for task_id, (_, new_owner) in moves.items():
        by_owner.setdefault(new_owner, []).append(task_id)
    now = utcnow()
    for owner_id, task_ids in by_owner.items():
        for chunk in _chunks(sorted(task_ids)):
            session.execute(
                update(Task)
                .where(tenant_clause(actor.organization_id, Task), Task.id.in_(chunk))
                .values(owner_id=owner_id, version=Task.version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    audit.record_many(
        session,
        actor,
        [
            ("task.reassigned", "task", task_id, {"owner_id": [old, new]})
            for task_id, (old, new) in sorted(moves.items())
        ],
    )
