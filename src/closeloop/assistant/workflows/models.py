"""Assistant workflows (trigger → conditions → retrieve → check → compose → deliver) and their runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class AssistantWorkflow(IdentifiedBy, OrganizationScoped, Base):
    """One pipeline, as data: ``event_type`` wakes it, ``definition`` holds its conditions, what to
    compose and how to deliver it (validated by :class:`closeloop.assistant.workflows.service.Definition`)."""

    __tablename__ = "assistant_workflows"
    __noun__ = "assistant_workflow"
    __table_args__ = (
        Index("ix_assistant_workflows_org_event", "organization_id", "event_type"),
        UniqueConstraint("organization_id", "name", name="uq_assistant_workflows_org_name"),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    event_type: Mapped[str] = mapped_column(String(60), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class AssistantWorkflowRun(IdentifiedBy, OrganizationScoped, Base):
    """What one event did through one workflow: delivered to whom, or why it was skipped."""

    __tablename__ = "assistant_workflow_runs"
    __noun__ = "assistant_workflow_run"
    __table_args__ = (
        Index("ix_assistant_workflow_runs_org_workflow", "organization_id", "workflow_id", "id"),
        UniqueConstraint("workflow_id", "event_id", name="uq_assistant_workflow_runs_event"),
    )

    workflow_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("assistant_workflows.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[int] = mapped_column(BigId, nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # delivered, skipped, failed
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
