"""Picklists shared by the CRM records (code values; labels live in the glossary and catalogs)."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"

    @property
    def is_closed(self) -> bool:
        return self in (Stage.WON, Stage.LOST)


OPEN_STAGES = (Stage.PROSPECTING, Stage.QUALIFICATION, Stage.PROPOSAL, Stage.NEGOTIATION)


class Tier(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class CompanySize(StrEnum):
    MICRO = "micro"  # < 10 employees
    SMALL = "small"  # 10-99
    MEDIUM = "medium"  # 100-999
    LARGE = "large"  # 1,000-9,999
    ENTERPRISE = "enterprise"  # 10,000+

    @classmethod
    def from_employees(cls, employees: int) -> CompanySize:
        if employees < 10:
            return cls.MICRO
        if employees < 100:
            return cls.SMALL
        if employees < 1000:
            return cls.MEDIUM
        if employees < 10000:
            return cls.LARGE
        return cls.ENTERPRISE


class DecisionRole(StrEnum):
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"
    GATEKEEPER = "gatekeeper"
    CHAMPION = "champion"


class LeadSource(StrEnum):
    WEBSITE = "website"
    REFERRAL = "referral"
    EVENT = "event"
    TRADE_SHOW = "trade_show"
    COLD_CALL = "cold_call"
    INBOUND_CALL = "inbound_call"
    ADVERTISING = "advertising"
    PARTNER = "partner"
    SOCIAL = "social"
    TENDER = "tender"
    IMPORT = "import"
    OTHER = "other"


class LeadStatus(StrEnum):
    NEW = "new"
    WORKING = "working"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    CHAT = "chat"
    VISIT = "visit"
    MEETING = "meeting"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class QuoteStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ContractStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"
