"""Field work (CN-5, 外勤): where and when a rep checked in on a visit, the photos taken there, and
the visits a rep plans for a day.

A check-in belongs to one visit activity (``activities.kind = 'visit'``) and is seen by whoever
sees that visit: its ``user_id`` is the visit's rep, and row scopes follow it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, UTCDateTime


class CheckIn(IdentifiedBy, OrganizationScoped, Base):
    """A rep's position at a visit: coordinates (WGS-84 degrees) with the browser's accuracy in
    metres, the address they confirmed, and how far that is from the account's own coordinates.
    ``source`` says where the coordinates came from: ``device`` (the phone's geolocation) or
    ``manual`` (typed in by the rep: shown as such, with no accuracy)."""

    __tablename__ = "visit_check_ins"
    __noun__ = "check_in"
    __owner_column__ = "user_id"
    __table_args__ = (
        Index("uq_visit_check_ins_org_activity", "organization_id", "activity_id", unique=True),
        Index("ix_visit_check_ins_org_user_at", "organization_id", "user_id", "checked_in_at"),
    )

    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    latitude: Mapped[float] = mapped_column(Float, nullable=False)
    longitude: Mapped[float] = mapped_column(Float, nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(8), nullable=False, default="device", server_default="device")
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    #: metres to the account's coordinates (``None`` when the account has none)
    distance_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_far: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class VisitPhoto(IdentifiedBy, OrganizationScoped, Base):
    """A photo taken at a visit, kept as a file under ``<storage>/fieldwork/<organization id>/``;
    its type was read from the file's first bytes, never from its name."""

    __tablename__ = "visit_photos"
    __noun__ = "visit_photo"
    __owner_column__ = "user_id"
    __table_args__ = (Index("ix_visit_photos_org_activity", "organization_id", "activity_id"),)

    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    content_type: Mapped[str] = mapped_column(String(40), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    stored_name: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class VisitPlan(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """The accounts one rep means to visit on one day, in order (the items)."""

    __tablename__ = "visit_plans"
    __noun__ = "visit_plan"
    __owner_column__ = "user_id"
    __table_args__ = (Index("uq_visit_plans_org_user_day", "organization_id", "user_id", "plan_date", unique=True),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    plan_date: Mapped[date] = mapped_column(Date, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class VisitPlanItem(IdentifiedBy, OrganizationScoped, Base):
    """One planned account of a plan, at its place in the day's order."""

    __tablename__ = "visit_plan_items"
    __table_args__ = (Index("ix_visit_plan_items_org_plan", "organization_id", "plan_id", "position"),)

    plan_id: Mapped[int] = mapped_column(BigId, ForeignKey("visit_plans.id", ondelete="CASCADE"), nullable=False)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    note: Mapped[str | None] = mapped_column(String(300), nullable=True)
