"""Daily and weekly reports (CN-6, 日报/周报) and each organization's rules for submitting them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class ReportKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class ReportStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class WorkReport(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One person's 日报 (a day) or 周报 (a Monday-to-Sunday week): the figures taken from that
    period's records when it was last filled in, and what they wrote themselves."""

    __tablename__ = "work_reports"
    __noun__ = "work_report"
    __owner_column__ = "user_id"
    __table_args__ = (
        Index("uq_work_reports_org_user_kind_start", "organization_id", "user_id", "kind", "period_start", unique=True),
        Index("ix_work_reports_org_kind_start", "organization_id", "kind", "period_start"),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[ReportKind] = mapped_column(String(10), nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    #: figure key → {"count": n, "amount": "123.00" or null}, as computed at ``figures_at``
    figures: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    figures_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    plan: Mapped[str | None] = mapped_column(Text, nullable=True)
    problems: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[ReportStatus] = mapped_column(String(10), nullable=False, default=ReportStatus.DRAFT)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    is_late: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class ReportRule(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """Who must submit a kind of report, and by when.

    A person must submit when their role is in ``roles`` (empty: any role) and their department is
    one of ``department_ids`` or below one (empty: any department). A daily report is due on its
    own day at ``deadline``; a weekly report on ``weekday`` (1 Monday … 7 Sunday) of its week.
    Times are in the business time zone (``settings.business_timezone``).
    """

    __tablename__ = "report_rules"
    __noun__ = "report_rule"
    __table_args__ = (Index("uq_report_rules_org_kind", "organization_id", "kind", unique=True),)

    kind: Mapped[ReportKind] = mapped_column(String(10), nullable=False)
    deadline: Mapped[str] = mapped_column(String(5), nullable=False, default="18:00")
    weekday: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    roles: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    department_ids: Mapped[list[Any]] = mapped_column(JSONDocument, nullable=False, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class ReportReminder(IdentifiedBy, OrganizationScoped, Base):
    """That a person was reminded of one period's report: the reminder job sends each at most once."""

    __tablename__ = "report_reminders"
    __table_args__ = (
        Index(
            "uq_report_reminders_org_user_kind_start", "organization_id", "user_id", "kind", "period_start", unique=True
        ),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[ReportKind] = mapped_column(String(10), nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
