"""Approval flows (审批流), the approvals submitted under them, each approver's task and the timeline.

A flow is data: per record type, branches ordered by priority, each with conditions on the record's
fields and a list of steps. An approval copies what it needs at submission — the record's fields
(the snapshot) and the resolved route (steps with their approvers as task rows) — so neither a
later edit of the record nor of the flow changes what is being approved.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class TaskStatus(StrEnum):
    WAITING = "waiting"  # its step (or the approver it follows) is not reached yet
    PENDING = "pending"  # the approver must act
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # no longer needed (another approver of an "any" step, a rejection, a withdrawal)
    CC = "cc"  # a copy for information (抄送): nothing to decide


class MissingApprover(StrEnum):
    SKIP = "skip"  # a step nobody can approve is passed over
    ADMIN = "admin"  # it goes to the flow's fallback role
    REFUSE = "refuse"  # the submission is refused


class ApprovalFlow(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One organization's flow for one record type. ``revision`` counts definition changes; each
    approval keeps the revision it ran under. ``department_ids`` narrows the flow to submitters in
    those departments (or below); the most specific enabled flow wins, then the lowest id."""

    __tablename__ = "approval_flows"
    __noun__ = "approval_flow"
    __table_args__ = (Index("ix_approval_flows_org_type", "organization_id", "record_type", "is_enabled"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    is_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    department_ids: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    #: {"branches": [{"name", "priority", "conditions": [{"field", "op", "value"}], "steps": [...], "cc": [...]}]}
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    missing_approver: Mapped[str] = mapped_column(String(10), nullable=False, default=MissingApprover.ADMIN)
    fallback_role: Mapped[str] = mapped_column(String(32), nullable=False, default="admin")
    skip_submitter: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Approval(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One submission of one record. A resubmission is a new approval pointing at the previous one
    (``previous_id``), so every round keeps its snapshot, route and timeline. ``version`` guards
    every decision: two approvers acting at once cannot both advance it."""

    __tablename__ = "approvals"
    __noun__ = "approval"
    __table_args__ = (
        Index("ix_approvals_org_record", "organization_id", "record_type", "record_id", "id"),
        Index("ix_approvals_org_submitter", "organization_id", "submitter_id", "id"),
        Index("ix_approvals_org_status", "organization_id", "status", "id"),
    )

    flow_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("approval_flows.id", ondelete="SET NULL"), nullable=True
    )
    flow_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    branch: Mapped[str | None] = mapped_column(String(120), nullable=True)
    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    #: None for a record that lives in the approval itself (an expense claim)
    record_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    submitter_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    #: who submitted, as the audit trail names them ("rule 3: …" for an automation rule)
    submitted_by: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ApprovalStatus.PENDING)
    #: the record's fields at submission, as JSON-safe values
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    #: what the submitter added (an account transfer's new owner, an expense claim's amount, …)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    #: the resolved steps: [{"position", "name", "mode", "note"}]
    route: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    current_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("approvals.id", ondelete="SET NULL"))
    round: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: the automation decision that asked for this approval, if a rule did
    decision_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApprovalTask(IdentifiedBy, OrganizationScoped, Base):
    """One approver's part in one step, or one person a copy goes to (status ``cc``, step -1).
    ``waits_for_id`` chains a task behind another (加签 before or after someone); ``sequence``
    orders the approvers of an in-sequence step."""

    __tablename__ = "approval_tasks"
    __table_args__ = (
        Index("ix_approval_tasks_org_approver", "organization_id", "approver_id", "status", "approval_id"),
        Index("ix_approval_tasks_org_approval", "organization_id", "approval_id", "step", "sequence"),
    )

    approval_id: Mapped[int] = mapped_column(BigId, ForeignKey("approvals.id", ondelete="CASCADE"), nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    approver_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=TaskStatus.WAITING)
    waits_for_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("approval_tasks.id", ondelete="SET NULL"))
    added_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class ApprovalEvent(IdentifiedBy, OrganizationScoped, Base):
    """One line of an approval's timeline: submitted, approved, rejected, approver added, CC'd,
    withdrawn, step skipped, decided. The audit trail holds the same actions, chained."""

    __tablename__ = "approval_events"
    __table_args__ = (Index("ix_approval_events_org_approval", "organization_id", "approval_id", "id"),)

    approval_id: Mapped[int] = mapped_column(BigId, ForeignKey("approvals.id", ondelete="CASCADE"), nullable=False)
    action: Mapped[str] = mapped_column(String(30), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(200), nullable=False)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
