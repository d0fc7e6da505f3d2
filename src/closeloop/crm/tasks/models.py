"""Tasks: to-dos for a person, usually about one record (a contact to complete, a deal to update)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Owned, RecordModel, tenant_indexes
from closeloop.db.types import BigId, UTCDateTime


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Task(RecordModel, Owned):
    """Something ``owner_id`` must do, optionally about one record (``subject_type`` + ``subject_id``).

    ``source`` says where the task came from (``"quality:<rule>"`` for the data-quality loop, empty
    for tasks people make); ``link`` is where to go to do it. ``closed_by_id`` is empty when the
    system closed it (a fixed defect closes its task by itself).
    """

    __tablename__ = "tasks"
    __noun__ = "task"
    __owner_column__ = "owner_id"
    __table_args__ = (
        *tenant_indexes("tasks", "owner_id", "status", "due_on"),
        Index("ix_tasks_org_subject", "organization_id", "subject_type", "subject_id"),
    )

    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[TaskStatus] = mapped_column(String(16), nullable=False, default=TaskStatus.OPEN)
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    subject_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    subject_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    link: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source: Mapped[str | None] = mapped_column(String(80), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
