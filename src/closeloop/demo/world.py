"""What the demo generators share: the fixed calendar, the organization being filled, and the
in-memory picture of the records generated so far (with provisional ids, see :mod:`closeloop.demo.bulk`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from closeloop.crm.enums import DecisionRole, Stage, Tier
from closeloop.demo.bulk import Rows
from closeloop.demo.catalog import ProductLineSpec, ProductSpec
from closeloop.demo.names import City, Province, RegionSpec

#: The moment the demo data set "is" (2026-11-01, 18:00 in Beijing, the end of that business day):
#: every date is placed relative to it, never to the wall clock.
ANCHOR = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
DEFAULT_SEED = 20261101
#: How far back the history goes.
WINDOW_DAYS = 730
BEIJING = timezone(timedelta(hours=8))


class Calendar:
    """Business moments relative to the anchor: office hours in Beijing, stored as UTC."""

    def __init__(self, rng: random.Random, anchor: datetime = ANCHOR) -> None:
        self.rng = rng
        self.anchor = anchor
        self.start = anchor - timedelta(days=WINDOW_DAYS)
        #: the latest moment anything happens: an hour before the anchor
        self.latest = anchor - timedelta(hours=1)

    def days_ago(self, days: float) -> datetime:
        """The office-hours moment on the Beijing day ``days`` before the anchor."""
        return self.during_office_hours(self.anchor - timedelta(days=days))

    def during_office_hours(self, moment: datetime) -> datetime:
        """``moment``'s Beijing day at a random time between 09:00 and 18:00 (as UTC); a day earlier
        when that would fall after :attr:`latest`."""
        day = moment.astimezone(BEIJING).date()
        minute = self.rng.randint(9 * 60, 18 * 60 - 1)
        local = datetime.combine(day, time(minute // 60, minute % 60, self.rng.randint(0, 59)), tzinfo=BEIJING)
        while local > self.latest:
            local -= timedelta(days=1)
        return local.astimezone(UTC)

    def after(self, moment: datetime, low_days: float, high_days: float, *, limit: datetime | None = None) -> datetime:
        """A moment ``low_days``..``high_days`` after ``moment``, drawn from what is left before ``limit``
        (default: :attr:`latest`), so that late moments spread out instead of piling up at the limit."""
        limit = limit or self.latest
        room = (limit - moment).total_seconds() / 86_400
        if room <= 0:
            return moment
        high = min(high_days, room)
        return moment + timedelta(days=self.rng.uniform(min(low_days, high / 2), high))

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(BEIJING).date()


def record_columns(organization_id: int, at: datetime, *, custom: bool = False) -> dict[str, Any]:
    """The columns every business record has (tenant, timestamps, version, soft delete)."""
    columns: dict[str, Any] = {
        "organization_id": organization_id,
        "created_at": at,
        "updated_at": at,
        "version": 1,
        "deleted_at": None,
    }
    if custom:
        columns["custom"] = {}
    return columns


def money(value: float | Decimal, step: int = 1) -> Decimal:
    """A CNY amount rounded to ``step`` yuan (cents when ``step`` is 0)."""
    if step <= 0:
        return Decimal(str(round(float(value), 2))).quantize(Decimal("0.01"))
    return Decimal(round(float(value) / step) * step).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class ProductRef:
    id: int
    spec: ProductSpec
    line_id: int
    line: ProductLineSpec


@dataclass(slots=True)
class Catalog:
    """A tenant's product lines and products, by provisional id."""

    lines: list[tuple[int, ProductLineSpec, list[ProductRef]]] = field(default_factory=list)

    def products_of(self, line_id: int) -> list[ProductRef]:
        return next(products for identifier, _, products in self.lines if identifier == line_id)

    def recurring(self) -> list[ProductRef]:
        return [product for _, _, products in self.lines for product in products if product.spec.is_recurring]


def add_catalog(rows: Rows, organization_id: int, lines: tuple[ProductLineSpec, ...], at: datetime) -> Catalog:
    """Queue the product lines and products of ``lines``; return them with their provisional ids."""
    catalog = Catalog()
    for line in lines:
        line_id = rows.add(
            "product_lines",
            {
                "name": line.name,
                "code": line.code,
                "description": line.description,
                **record_columns(organization_id, at),
            },
        )
        products = []
        for spec in line.products:
            product_id = rows.add(
                "products",
                {
                    "name": spec.name,
                    "code": spec.code,
                    "product_line_id": line_id,
                    "list_price": spec.list_price.quantize(Decimal("0.01")),
                    "currency": "CNY",
                    "unit": spec.unit,
                    "lead_time_days": spec.lead_time_days,
                    "is_active": True,
                    "description": None,
                    **record_columns(organization_id, at),
                },
            )
            products.append(ProductRef(product_id, spec, line_id, line))
        catalog.lines.append((line_id, line, products))
    return catalog


@dataclass(frozen=True, slots=True)
class Territory:
    """A region of the tenant: its provisional id (``None`` for a partner without regions) and who sells there."""

    spec: RegionSpec
    region_id: int | None
    owners: tuple[int, ...]
    managers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Tenant:
    """The organization a generator fills, and the shape of its business."""

    organization_id: int
    name: str
    territories: tuple[Territory, ...]
    catalog: Catalog
    #: share of customers with Chinese names (the rest have English ones)
    chinese_share: float
    #: (industry, weight, fewest employees, most employees)
    industries: tuple[tuple[str, float, int, int], ...]
    #: probability that a closed deal is won
    win_rate: float
    #: the e-mail domain of the tenant's own people (for message ids)
    domain: str


@dataclass(slots=True)
class ContactInfo:
    id: int
    name: str
    decision_role: DecisionRole
    created_at: datetime


@dataclass(slots=True)
class AccountInfo:
    id: int
    name: str
    industry: str
    tier: Tier
    territory: Territory
    province: Province
    city: City
    owner_id: int
    created_at: datetime
    is_chinese: bool
    domain: str
    contacts: list[ContactInfo] = field(default_factory=list)
    first_win_at: datetime | None = None
    first_repurchase_at: datetime | None = None
    bought: list[ProductRef] = field(default_factory=list)

    def contact(self, rng: random.Random, *roles: DecisionRole) -> ContactInfo | None:
        """A contact in one of ``roles`` if there is one, else any contact, else ``None``."""
        preferred = [contact for contact in self.contacts if contact.decision_role in roles]
        pool = preferred or self.contacts
        return rng.choice(pool) if pool else None


@dataclass(frozen=True, slots=True)
class LineInfo:
    product: ProductRef
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(Decimal("0.01"))


@dataclass(slots=True)
class OpportunityInfo:
    id: int
    account: AccountInfo
    contact_id: int | None
    owner_id: int
    opened_at: datetime
    stage: Stage
    stage_changed_at: datetime
    closed_at: datetime | None
    lines: list[LineInfo]


@dataclass(slots=True)
class LeadInfo:
    id: int
    owner_id: int | None
    received_at: datetime
    converted_at: datetime | None
    territory: Territory
    is_chinese: bool
