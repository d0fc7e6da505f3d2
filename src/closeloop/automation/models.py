"""Rules, their versions, the decisions they write, actions waiting in the undo window, approval
and review requests, and the hosts outgoing webhooks may call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class Rule(IdentifiedBy, OrganizationScoped, Base):
    """A rule of one organization. Its definition lives in :class:`RuleVersion`; editing adds a
    version and moves ``current_version`` (decisions keep naming the version that fired)."""

    __tablename__ = "automation_rules"
    __noun__ = "rule"
    __table_args__ = (Index("ix_automation_rules_org_enabled", "organization_id", "enabled", "id"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: how long actions that change data or leave the system wait, cancellable (seconds)
    undo_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RuleVersion(IdentifiedBy, OrganizationScoped, Base):
    """One immutable definition of a rule: trigger, conditions, actions (the parser's structure)."""

    __tablename__ = "automation_rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("automation_rules.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    #: the sentence it was written as, and its language (empty for rules built field by field)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    lang: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Decision(IdentifiedBy, OrganizationScoped, Base):
    """Why a rule fired on a record (GOV-8): the version, the triggering event, every condition with
    the value it saw, the actions and what became of them, and the reason in both languages.

    ``firing_key`` makes a firing happen once: ``event:<id>`` for an event, ``<period>`` for a
    scheduled check (a rule fires on a record at most once per scheduled period)."""

    __tablename__ = "automation_decisions"
    __noun__ = "decision"
    __table_args__ = (
        UniqueConstraint("rule_id", "rule_version", "record_type", "record_id", "firing_key"),
        Index("ix_automation_decisions_org_record", "organization_id", "record_type", "record_id", "id"),
        Index("ix_automation_decisions_org_rule", "organization_id", "rule_id", "id"),
    )

    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("automation_rules.id", ondelete="CASCADE"), nullable=False)
    rule_version: Mapped[int] = mapped_column(Integer, nullable=False)
    rule_name: Mapped[str] = mapped_column(String(200), nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    event_type: Mapped[str] = mapped_column(String(80), nullable=False)
    firing_key: Mapped[str] = mapped_column(String(80), nullable=False)
    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[int] = mapped_column(BigId, nullable=False)
    #: owner of the record when it fired (a rep reads decisions about their own records)
    record_owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    conditions: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False)
    actions: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False)
    why_zh: Mapped[str] = mapped_column(Text, nullable=False)
    why_en: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class PendingAction(IdentifiedBy, OrganizationScoped, Base):
    """An action that changes data or leaves the system, waiting out its rule's undo window.

    ``status``: pending → running → done | failed, or pending → cancelled (who and when are kept)."""

    __tablename__ = "automation_pending_actions"
    __noun__ = "pending_action"
    __table_args__ = (
        Index("ix_automation_pending_due", "status", "run_after", "id"),
        Index("ix_automation_pending_org_status", "organization_id", "status", "id"),
    )

    decision_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("automation_decisions.id", ondelete="CASCADE"), nullable=False
    )
    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("automation_rules.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    record_type: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[int] = mapped_column(BigId, nullable=False)
    record_owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    result: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    cancelled_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class ReviewRequest(IdentifiedBy, OrganizationScoped, Base):
    """Someone affected by a decision asks a person to look at it: the rule owner's manager."""

    __tablename__ = "automation_reviews"
    __noun__ = "review"
    __table_args__ = (Index("ix_automation_reviews_org_reviewer", "organization_id", "reviewer_id", "status", "id"),)

    decision_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("automation_decisions.id", ondelete="CASCADE"), nullable=False
    )
    requested_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    reviewer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class WebhookHost(IdentifiedBy, OrganizationScoped, Base):
    """A host outgoing webhooks of the organization may call, and the secret their bodies are signed with."""

    __tablename__ = "automation_webhook_hosts"
    __table_args__ = (UniqueConstraint("organization_id", "host"),)

    host: Mapped[str] = mapped_column(String(253), nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Playbook(IdentifiedBy, OrganizationScoped, Base):
    """A follow-up strategy as data (AUTO-3): the opportunities it suits (``match``: industries,
    company sizes, purchase cycle) and its steps (``[{"title", "due_in_days"}]``), done in order."""

    __tablename__ = "automation_playbooks"
    __noun__ = "playbook"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    match: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    steps: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class PlaybookRun(IdentifiedBy, OrganizationScoped, Base):
    """A playbook followed on one opportunity: the step reached and the task open for it."""

    __tablename__ = "automation_playbook_runs"
    __table_args__ = (Index("ix_automation_playbook_runs_org_opportunity", "organization_id", "opportunity_id"),)

    playbook_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("automation_playbooks.id", ondelete="CASCADE"), nullable=False
    )
    opportunity_id: Mapped[int] = mapped_column(BigId, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    task_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class WebhookDelivery(IdentifiedBy, OrganizationScoped, Base):
    """One outgoing webhook, sent at least once: retried with exponential backoff until the receiver
    answers 2xx or the attempts run out. Every attempt carries the same ``idempotency_key`` (header
    ``Idempotency-Key``) so the receiver can drop duplicates.

    ``status``: pending → delivered | failed (attempts exhausted, or the host is no longer allowed)."""

    __tablename__ = "automation_webhook_deliveries"
    __noun__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_automation_webhook_deliveries_due", "status", "next_attempt_at", "id"),
        Index("ix_automation_webhook_deliveries_org", "organization_id", "id"),
    )

    pending_action_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("automation_pending_actions.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    decision_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("automation_decisions.id", ondelete="CASCADE"), nullable=False
    )
    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("automation_rules.id", ondelete="CASCADE"), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)
