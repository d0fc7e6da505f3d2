"""Stored forecasting results: one win-probability model per organization, bookings snapshots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, JSONDocument, Money, ScaledDecimal, UTCDateTime


class WinProbabilityModel(IdentifiedBy, OrganizationScoped, Base):
    """The organization's latest win-probability model (a pickled calibrated LightGBM written by the
    retraining task, never by a request) and what it was trained on."""

    __tablename__ = "win_probability_models"
    __noun__ = "win_probability_model"
    __table_args__ = (Index("uq_win_probability_models_org", "organization_id", unique=True),)

    trained_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    closed_deals: Mapped[int] = mapped_column(Integer, nullable=False)
    won_deals: Mapped[int] = mapped_column(Integer, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)

    @property
    def serves(self) -> bool:
        """Whether the model is used: only when, on its time-based holdout, its Brier score was no
        worse than the no-model stage rates' on the same deals (a model without those figures —
        too few closed deals to hold any out, or trained before they were kept — is used)."""
        model, rates = self.metrics.get("brier"), self.metrics.get("stage_rate_brier")
        return model is None or rates is None or float(model) <= float(rates)


class BookingsSnapshot(IdentifiedBy, OrganizationScoped, Base):
    """One bookings forecast as it stood when it was taken (by the daily task or ``closeloop forecast
    snapshot``), kept so that it can later be compared with what was actually booked."""

    __tablename__ = "bookings_snapshots"
    __noun__ = "bookings_snapshot"
    __table_args__ = (Index("ix_bookings_snapshots_org_taken", "organization_id", "taken_at"),)

    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    as_of: Mapped[date] = mapped_column(Date, nullable=False)
    #: "calibrated_lightgbm" or "stage_win_rate": where the deals' win probabilities came from
    method: Mapped[str] = mapped_column(String(40), nullable=False)
    simulations: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    #: the learned close-date slippage sample (days), the run-rate basis and its cycle-time CDF
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)


class BookingsForecastRow(IdentifiedBy, OrganizationScoped, Base):
    """One period × dimension value of a snapshot: expected bookings with an 80 % interval, the
    commit / best case / pipeline categories and the run-rate part."""

    __tablename__ = "bookings_forecast_rows"
    __table_args__ = (
        Index("ix_bookings_forecast_rows_snapshot", "organization_id", "snapshot_id", "dimension", "period"),
    )

    snapshot_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("bookings_snapshots.id", ondelete="CASCADE"), nullable=False
    )
    granularity: Mapped[str] = mapped_column(String(10), nullable=False)  # month | quarter
    period: Mapped[str] = mapped_column(String(10), nullable=False)  # 2026-11 | 2026-Q4
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)  # exclusive
    dimension: Mapped[str] = mapped_column(String(20), nullable=False)  # total | owner | region | product_line
    key: Mapped[int | None] = mapped_column(BigId, nullable=True)  # the owner / region / line id (None: none or total)
    won_to_date: Mapped[Decimal] = mapped_column(Money, nullable=False)
    expected: Mapped[Decimal] = mapped_column(Money, nullable=False)
    low: Mapped[Decimal] = mapped_column(Money, nullable=False)
    high: Mapped[Decimal] = mapped_column(Money, nullable=False)
    run_rate: Mapped[Decimal] = mapped_column(Money, nullable=False)
    commit: Mapped[Decimal] = mapped_column(Money, nullable=False)
    best_case: Mapped[Decimal] = mapped_column(Money, nullable=False)
    pipeline: Mapped[Decimal] = mapped_column(Money, nullable=False)
    open_deals: Mapped[int] = mapped_column(Integer, nullable=False)


class BookingsSnapshotDeal(IdentifiedBy, OrganizationScoped, Base):
    """An open deal as the snapshot saw it (for deviation attribution: what changed since)."""

    __tablename__ = "bookings_snapshot_deals"
    __table_args__ = (Index("ix_bookings_snapshot_deals_snapshot", "organization_id", "snapshot_id"),)

    snapshot_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("bookings_snapshots.id", ondelete="CASCADE"), nullable=False
    )
    opportunity_id: Mapped[int] = mapped_column(BigId, nullable=False)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    region_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    product_line_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    stage: Mapped[str] = mapped_column(String(20), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    expected_close_date: Mapped[date] = mapped_column(Date, nullable=False)
    probability: Mapped[float] = mapped_column(Float, nullable=False)


class DealerStock(IdentifiedBy, OrganizationScoped, Base):
    """A dealer's (an account's) stock of one product as last reported — imported from a CSV the
    dealer sends (``closeloop forecast import-stock``); the input of replenishment suggestions."""

    __tablename__ = "dealer_stock"
    __table_args__ = (
        Index("uq_dealer_stock_org_account_product", "organization_id", "account_id", "product_id", unique=True),
    )

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    on_hand: Mapped[Decimal] = mapped_column(ScaledDecimal(3), nullable=False)
    on_order: Mapped[Decimal] = mapped_column(ScaledDecimal(3), nullable=False, default=Decimal(0))
    #: the dealer's own lead time for this product (else the product's)
    lead_time_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class CalendarEvent(IdentifiedBy, OrganizationScoped, Base):
    """A day or span that moves business — a holiday, a tender date, a regulation change —
    imported from a CSV (``closeloop forecast import-calendar``), optionally for one region or
    product line; deviation attribution gives it the deals expected to close inside it that missed."""

    __tablename__ = "calendar_events"
    __table_args__ = (Index("ix_calendar_events_org_starts", "organization_id", "starts_on"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # holiday | tender | regulation | other
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)  # inclusive
    region_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("regions.id", ondelete="CASCADE"), nullable=True)
    product_line_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("product_lines.id", ondelete="CASCADE"), nullable=True
    )


class InquirySignal(IdentifiedBy, OrganizationScoped, Base):
    """An account searched or asked about a keyword (a product name, a part) on a day — a demand
    signal (FC-2) and, as the outbox event ``signal.recorded``, what signal rules wake on (FC-4).
    Imported with ``closeloop forecast import-signals``."""

    __tablename__ = "inquiry_signals"
    __noun__ = "inquiry_signal"
    __table_args__ = (
        Index("ix_inquiry_signals_org_account_keyword", "organization_id", "account_id", "keyword", "occurred_at"),
    )

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    keyword: Mapped[str] = mapped_column(String(200), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: where it came from (site_search, inquiry_form, import …)
    source: Mapped[str] = mapped_column(String(40), nullable=False, default="import")
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class StockReservation(IdentifiedBy, OrganizationScoped, Base):
    """Units of a product held for an account out of a dealer's reported stock (:class:`DealerStock`):
    what is available there is ``on_hand`` less the active reservations. ``status``: active → released."""

    __tablename__ = "stock_reservations"
    __noun__ = "stock_reservation"
    __table_args__ = (
        Index("ix_stock_reservations_org_stock", "organization_id", "dealer_stock_id", "status"),
        Index("ix_stock_reservations_org_account", "organization_id", "account_id", "id"),
    )

    dealer_stock_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("dealer_stock.id", ondelete="CASCADE"), nullable=False
    )
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    #: what asked for it ("rule 12: …") and the decision, when a rule did
    reason: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    decision_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
