"""Task request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from closeloop.crm.schemas import Id, Name, Schema, Text
from closeloop.crm.tasks.models import TaskStatus

SubjectType = Annotated[str, Field(max_length=40, pattern=r"^[a-z_]+$", examples=["contact"])]
Link = Annotated[str, Field(max_length=300, examples=["/api/v1/contacts/42"])]


class TaskFields(Schema):
    description: Text | None = None
    due_on: date | None = None
    subject_type: SubjectType | None = None
    subject_id: Id | None = None
    link: Link | None = None
    owner_id: Id | None = None


class TaskCreate(TaskFields):
    title: Name


class TaskUpdate(TaskFields):
    title: Name | None = None
    status: TaskStatus | None = None
