"""Targets (CN-6, 目标): what a company, a department or a person should reach in a year or a month."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId


class Metric(StrEnum):
    CONTRACT_AMOUNT = "contract_amount"
    COLLECTIONS = "collections"
    NEW_ACCOUNTS = "new_accounts"
    VISITS = "visits"


class TargetScope(StrEnum):
    COMPANY = "company"
    DEPARTMENT = "department"
    USER = "user"


class Target(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One figure to reach: for the company, a department (its sub-departments included) or a
    person; for a year (``month`` empty) or one month. ``subject_key`` ("company", "department:7",
    "user:12") makes one target per subject, metric and period."""

    __tablename__ = "targets"
    __noun__ = "target"
    __table_args__ = (
        Index("uq_targets_subject_period", "organization_id", "subject_key", "metric", "year", "month", unique=True),
        Index("ix_targets_period", "organization_id", "year", "month"),
    )

    scope: Mapped[TargetScope] = mapped_column(String(12), nullable=False)
    subject_key: Mapped[str] = mapped_column(String(40), nullable=False)
    department_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("departments.id", ondelete="CASCADE"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    metric: Mapped[Metric] = mapped_column(String(20), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    #: 1–12, or 0 for the whole year (0 rather than NULL so the unique index holds on every database)
    month: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    value: Mapped[Decimal] = mapped_column(Numeric(18, 2), nullable=False)
