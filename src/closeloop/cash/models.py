"""Lead to cash (CN-3, 线索到回款): a contract's collection plan (回款计划) as instalments, the
collections (回款) recorded against them, and the invoices (发票) issued on the contract.

An instalment's status is not stored: it follows from its approved collections and the clock
(:func:`closeloop.cash.service.instalment_status`). What the daily job stores is only what it did
(``overdue_since``, ``reminded_on``, ``alerted_on``), so that running it twice a day changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, Money, UTCDateTime


class InstalmentStatus(StrEnum):
    PENDING = "pending"
    PARTIAL = "partial"
    PAID = "paid"
    OVERDUE = "overdue"
    VOID = "void"


class CollectionStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class CollectionMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    ACCEPTANCE_BILL = "acceptance_bill"
    CHEQUE = "cheque"
    CASH = "cash"
    ONLINE = "online"
    OTHER = "other"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    VOID = "void"


class InvoiceKind(StrEnum):
    GENERAL = "general"  # 增值税普通发票
    SPECIAL = "special"  # 增值税专用发票


class Instalment(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """One instalment of a contract's collection plan: how much is due when, and how many days before
    the due date its owner is reminded. The plan is the contract's instalments in ``number`` order."""

    __tablename__ = "collection_instalments"
    __noun__ = "instalment"
    __table_args__ = (
        Index("uq_collection_instalments_contract_number", "organization_id", "contract_id", "number", unique=True),
        Index("ix_collection_instalments_due", "organization_id", "due_on"),
    )

    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    remind_days: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    note: Mapped[str | None] = mapped_column(String(300), nullable=True)
    is_void: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: set by the daily job the first day it found the instalment overdue (cleared when paid)
    overdue_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: the last day the owner was reminded of the coming due date, and alerted of the overdue one
    reminded_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    alerted_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Collection(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """Money received (回款) against one instalment. It counts only once approved."""

    __tablename__ = "collections"
    __noun__ = "collection"
    __table_args__ = (
        Index("ix_collections_instalment", "organization_id", "instalment_id", "status"),
        Index("ix_collections_contract", "organization_id", "contract_id", "status"),
        Index("ix_collections_received", "organization_id", "status", "received_on"),
    )

    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False)
    instalment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("collection_instalments.id", ondelete="CASCADE"), nullable=False
    )
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    received_on: Mapped[date] = mapped_column(Date, nullable=False)
    method: Mapped[CollectionMethod] = mapped_column(String(20), nullable=False, default=CollectionMethod.BANK_TRANSFER)
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[CollectionStatus] = mapped_column(String(12), nullable=False, default=CollectionStatus.SUBMITTED)
    recorded_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    decided_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Invoice(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """An invoice (发票) on a contract, with the buyer's invoice title (开票信息) as given."""

    __tablename__ = "invoices"
    __noun__ = "invoice"
    __table_args__ = (Index("ix_invoices_contract", "organization_id", "contract_id"),)

    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[InvoiceKind] = mapped_column(String(10), nullable=False, default=InvoiceKind.GENERAL)
    number: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    status: Mapped[InvoiceStatus] = mapped_column(String(10), nullable=False, default=InvoiceStatus.DRAFT)
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: the buyer's invoice title: 名称, 税号, 开户行, 账号, 地址电话
    title_name: Mapped[str] = mapped_column(String(200), nullable=False)
    tax_id: Mapped[str] = mapped_column(String(20), nullable=False)
    bank_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    bank_account: Mapped[str | None] = mapped_column(String(40), nullable=True)
    address_phone: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
