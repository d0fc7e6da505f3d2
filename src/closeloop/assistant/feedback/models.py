"""Verdicts on suggestions and the stored weekly reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class SuggestionVerdict(IdentifiedBy, OrganizationScoped, Base):
    """One rep's adopt / reject of one suggestion, with the request it answered.

    ``key`` names what was suggested (``knowledge:<chunk id>``, ``account:<id>``…); ``chunk_id`` is
    set for knowledge passages, whose later rankings the verdict moves; ``query`` is the request
    (the objection, the competitor, the brief's topics), compared with later requests' words.
    """

    __tablename__ = "suggestion_verdicts"
    __noun__ = "suggestion_verdict"
    __table_args__ = (
        Index("ix_suggestion_verdicts_org_id", "organization_id", "id"),
        Index("ix_suggestion_verdicts_org_chunk", "organization_id", "chunk_id"),
        Index("ix_suggestion_verdicts_org_decided", "organization_id", "decided_at"),
    )

    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[str] = mapped_column(String(20), nullable=False)  # brief, talk_track, battlecard, passage
    key: Mapped[str] = mapped_column(String(80), nullable=False)
    chunk_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("knowledge_chunks.id", ondelete="SET NULL"), nullable=True
    )
    query: Mapped[str] = mapped_column(Text, nullable=False, default="")
    verdict: Mapped[str] = mapped_column(String(10), nullable=False)  # adopted, rejected
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class AdoptionReport(IdentifiedBy, OrganizationScoped, Base):
    """The adoption report of one week (Monday to Sunday), computed by the weekly task."""

    __tablename__ = "adoption_reports"
    __noun__ = "adoption_report"
    __table_args__ = (
        Index("ix_adoption_reports_org_id", "organization_id", "id"),
        UniqueConstraint("organization_id", "week_start", name="uq_adoption_reports_org_week"),
    )

    week_start: Mapped[date] = mapped_column(Date, nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
