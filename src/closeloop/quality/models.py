"""Defects, scans, KPI snapshots and the name keys the duplicate rules block on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class Defect(IdentifiedBy, OrganizationScoped, Base):
    """One rule broken by one record, from when a scan first saw it until a scan saw it fixed.

    ``owner_id`` follows the record's owner, so row scopes apply to defects as to the records
    (unowned defects — an unassigned lead, a duplicate product — are visible to the organization).
    ``details`` says what is wrong; field values in it sit under ``details["fields"]`` so that
    masked fields can be left out for readers who may not see them. At most one open defect exists
    per rule and record; a defect that comes back after being fixed is a new row.
    """

    __tablename__ = "quality_defects"
    __noun__ = "quality_defect"
    __owner_column__ = "owner_id"
    __unowned_visible__ = True
    __table_args__ = (
        Index("ix_quality_defects_org_id", "organization_id", "id"),
        Index("ix_quality_defects_org_owner", "organization_id", "owner_id", "id"),
        Index("ix_quality_defects_org_subject", "organization_id", "subject_type", "subject_id"),
        Index(
            "uq_quality_defects_open",
            "organization_id",
            "rule",
            "subject_type",
            "subject_id",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    rule: Mapped[str] = mapped_column(String(60), nullable=False)
    severity: Mapped[str] = mapped_column(String(10), nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[int] = mapped_column(BigId, nullable=False)
    owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    task_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True)


class ScanStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Scan(IdentifiedBy, OrganizationScoped, Base):
    """One run of the scanner over an organization. ``watermark`` is the newest ``updated_at`` it saw
    among the scanned records: the next incremental scan re-checks what changed after it."""

    __tablename__ = "quality_scans"
    __noun__ = "quality_scan"
    __table_args__ = (Index("ix_quality_scans_org_id", "organization_id", "id"),)

    full: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ScanStatus.QUEUED)
    requested_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: records changed after this moment were re-checked (``None``: everything was)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    opened: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    resolved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: rule → {"open": n, "checked": n (None: all), "opened": n, "resolved": n}
    report: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class KpiSnapshot(IdentifiedBy, OrganizationScoped, Base):
    """Data-quality KPIs of one group (an owner, a team, a region, the organization) after one scan."""

    __tablename__ = "quality_kpi_snapshots"
    __noun__ = "quality_kpi_snapshot"
    __table_args__ = (
        Index("ix_quality_kpi_snapshots_org_group", "organization_id", "group_by", "group_id", "taken_at"),
    )

    scan_id: Mapped[int] = mapped_column(BigId, ForeignKey("quality_scans.id", ondelete="CASCADE"), nullable=False)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    group_by: Mapped[str] = mapped_column(String(16), nullable=False)
    #: the owner's or team manager's user id, the region id; ``None`` for the organization
    group_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)


class NameKey(OrganizationScoped, Base):
    """The normalized name and its pinyin of an account or product, kept by the scanner so that
    duplicates are found by indexed equality (blocking) instead of comparing every pair."""

    __tablename__ = "quality_name_keys"
    __table_args__ = (
        Index("ix_quality_name_keys_org_name", "organization_id", "subject_type", "name_key"),
        Index("ix_quality_name_keys_org_sound", "organization_id", "subject_type", "sound_key"),
    )

    subject_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name_key: Mapped[str] = mapped_column(String(200), nullable=False)
    sound_key: Mapped[str] = mapped_column(String(400), nullable=False)


class FreshnessSetting(IdentifiedBy, OrganizationScoped, Base):
    """How long one monitored field or feed may stay silent before its owner is alerted (GOV-4).

    Without a row, the learned rule applies with the deployment's defaults. ``max_silent_days``
    replaces the learned limit (and also watches a feed with no regular rhythm); ``factor`` scales
    the usual gap; ``muted`` stops the alerts of a feed that is meant to stop.
    """

    __tablename__ = "quality_freshness_settings"
    __noun__ = "quality_freshness_setting"
    __table_args__ = (Index("uq_quality_freshness_settings_feed", "organization_id", "feed", unique=True),)

    feed: Mapped[str] = mapped_column(String(110), nullable=False)
    factor: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_silent_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    muted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
