"""Forecasts that act (FC-4): replenishment suggestions per dealer and product, and the allocation of
an incentive pool across regions in proportion to their forecast upside.

**Replenishment** (a periodic-review, order-up-to policy). A dealer is an account that reports its
stock (:class:`~closeloop.forecasting.models.DealerStock`). Its demand for a product is forecast
from what it ordered over the last ``weeks`` weeks (order lines): the mean weekly quantity ``μ`` and
its standard deviation ``σ``. Over the lead time ``L`` plus the review period ``R`` (days):

    safety stock   SS = z × σ × √((L + R) / 7)
    order-up-to    S  = μ × (L + R) / 7 + SS
    suggestion     Q  = max(0, ⌈S − on hand − on order⌉)

with ``z`` = 1.645 for a 95 % cycle service level. The lead time is the dealer's own for the
product, else the product's, else ``DEFAULT_LEAD_DAYS``.

**Incentive pool.** For a period of the latest bookings snapshot, each region's upside is the top
of its 80 % interval above its expected value (``high − expected``): what the region could still add
if the pipeline breaks its way. A pool of ``P`` is split as ``P × upside_r ÷ Σ upside``, in cents,
the rounding remainder going to the largest shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Forbidden, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.products.models import Product
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.forecasting import bookings
from closeloop.forecasting.models import BookingsForecastRow, DealerStock
from closeloop.org.models import Region

DEFAULT_LEAD_DAYS = 14
REVIEW_DAYS = 7
SERVICE_Z = 1.645


@dataclass(frozen=True)
class Replenishment:
    weekly_mean: float
    weekly_sd: float
    lead_days: int
    review_days: int
    safety_stock: float
    order_up_to: float
    suggested: int


def replenishment(
    weekly_demand: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    on_hand: float,
    on_order: float,
    lead_days: int,
    *,
    review_days: int = REVIEW_DAYS,
    z: float = SERVICE_Z,
) -> Replenishment:
    """The order-up-to suggestion for one dealer and product (see the module's formula)."""
    demand = np.asarray(weekly_demand, dtype=np.float64)
    mean = float(demand.mean()) if len(demand) else 0.0
    sd = float(demand.std(ddof=1)) if len(demand) > 1 else 0.0
    weeks = (lead_days + review_days) / 7.0
    safety = z * sd * math.sqrt(weeks)
    up_to = mean * weeks + safety
    return Replenishment(
        weekly_mean=mean,
        weekly_sd=sd,
        lead_days=lead_days,
        review_days=review_days,
        safety_stock=safety,
        order_up_to=up_to,
        suggested=max(0, math.ceil(up_to - on_hand - on_order - 1e-9)),
    )


def suggestions(session: Session, actor: Actor, *, weeks: int = 13) -> dict[str, Any]:
    """A suggestion for every reported dealer stock of an account ``actor`` may see."""
    bookings.require_readable(session, actor)
    if not 4 <= weeks <= 104:
        raise ValidationFailed.one("weeks", "must be between 4 and 104")
    org = actor.organization_id
    today = utcnow().date()
    start = today - timedelta(days=7 * weeks)
    stocks = session.execute(
        select(DealerStock, Account.name, Product.name, Product.code, Product.lead_time_days)
        .select_from(DealerStock)  # the account's read scope holds subqueries: name the left side
        .join(
            Account,
            and_(Account.id == DealerStock.account_id, visibility_clause(actor, Account, access=RowAccess.READ)),
        )
        .join(Product, and_(Product.id == DealerStock.product_id, tenant_clause(org, Product)))
        .where(tenant_clause(org, DealerStock))
        .order_by(Account.name, Product.name)
    ).all()
    if not stocks:
        return {"weeks": weeks, "review_days": REVIEW_DAYS, "service_z": SERVICE_Z, "items": []}
    pairs = {(row[0].account_id, row[0].product_id) for row in stocks}
    # weekly ordered quantities of those dealers and products (one grouped read)
    ordered: dict[tuple[int, int], np.ndarray[Any, np.dtype[np.float64]]] = {pair: np.zeros(weeks) for pair in pairs}
    for account_id, product_id, ordered_at, quantity in session.execute(
        select(Order.account_id, OrderLine.product_id, Order.ordered_at, func.sum(OrderLine.quantity))
        .join(Order, and_(Order.id == OrderLine.order_id, tenant_clause(org, Order)))
        .where(
            tenant_clause(org, OrderLine),
            Order.account_id.in_(sorted({pair[0] for pair in pairs})),
            OrderLine.product_id.in_(sorted({pair[1] for pair in pairs})),
            Order.ordered_at >= datetime.combine(start, time.min, tzinfo=UTC),
            Order.status != "cancelled",
        )
        .group_by(Order.account_id, OrderLine.product_id, Order.ordered_at)
    ):
        pair = (account_id, product_id)
        if pair not in ordered or ordered_at is None:
            continue
        week = (as_utc(ordered_at).date() - start).days // 7
        if 0 <= week < weeks:
            ordered[pair][week] += float(quantity or 0)
    items = []
    for stock, account_name, product_name, product_code, product_lead in stocks:
        lead = stock.lead_time_days or product_lead or DEFAULT_LEAD_DAYS
        plan = replenishment(
            ordered[(stock.account_id, stock.product_id)], float(stock.on_hand), float(stock.on_order), lead
        )
        items.append(
            {
                "account_id": stock.account_id,
                "account": account_name,
                "product_id": stock.product_id,
                "product": product_name,
                "product_code": product_code,
                "on_hand": str(stock.on_hand),
                "on_order": str(stock.on_order),
                "reported_at": as_utc(stock.reported_at).isoformat(),
                "weekly_demand": round(plan.weekly_mean, 3),
                "weekly_sd": round(plan.weekly_sd, 3),
                "lead_days": plan.lead_days,
                "safety_stock": round(plan.safety_stock, 3),
                "order_up_to": round(plan.order_up_to, 3),
                "suggested": plan.suggested,
            }
        )
    return {"weeks": weeks, "review_days": REVIEW_DAYS, "service_z": SERVICE_Z, "items": items}


def allocate(pool: Decimal, upsides: dict[int | None, float]) -> dict[int | None, Decimal]:
    """``pool`` split in proportion to ``upsides`` (negative ones count as none), in cents; the
    cents lost to rounding down go one each to the largest remainders, so the parts sum to the pool."""
    weights = {key: max(value, 0.0) for key, value in upsides.items()}
    total = sum(weights.values())
    if total <= 0:
        return dict.fromkeys(upsides, Decimal("0.00"))
    cents = int((pool * 100).to_integral_value(rounding=ROUND_DOWN))
    exact = {key: cents * weight / total for key, weight in weights.items()}
    parts = {key: math.floor(value) for key, value in exact.items()}
    left = cents - sum(parts.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - parts[k]), str(k)))[:left]:
        parts[key] += 1
    return {key: Decimal(value).scaleb(-2) for key, value in parts.items()}  # always two places: 2524.00


def incentives(session: Session, actor: Actor, *, pool: Decimal, period: str | None = None) -> dict[str, Any]:
    """The pool split across regions by forecast upside in ``period`` (default: the current quarter)."""
    bookings.require_readable(session, actor)
    if actor.scope is not RowScope.ALL:
        raise Forbidden("The incentive split compares every region, which needs the whole organization in reach")
    if pool <= 0 or pool >= Decimal("1e13"):
        raise ValidationFailed.one("pool", "must be a positive amount")
    snapshot = bookings._snapshot(session, actor, None)
    if snapshot is None:
        return {"snapshot": None, "period": period, "pool": str(pool), "items": [], "rule": RULE}
    rows = list(
        session.scalars(
            select(BookingsForecastRow).where(
                tenant_clause(actor.organization_id, BookingsForecastRow),
                BookingsForecastRow.snapshot_id == snapshot.id,
                BookingsForecastRow.dimension == "region",
                BookingsForecastRow.granularity == ("quarter" if period is None or "Q" in period else "month"),
            )
        )
    )
    chosen = period or min((row.period for row in rows), default=None)
    rows = [row for row in rows if row.period == chosen]
    if period is not None and not rows:
        raise ValidationFailed.one("period", "is not a period of the latest forecast")
    upsides = {row.key: float(row.high - row.expected) for row in rows}
    shares = allocate(pool, upsides)
    total = sum(max(value, 0.0) for value in upsides.values())
    names = dict(
        session.execute(
            select(Region.id, Region.name).where(
                tenant_clause(actor.organization_id, Region), Region.id.in_([k for k in upsides if k] or [-1])
            )
        ).all()
    )
    return {
        "snapshot": bookings.snapshot_dict(snapshot),
        "period": chosen,
        "pool": str(pool.quantize(Decimal("0.01"))),
        "rule": RULE,
        "items": [
            {
                "region_id": row.key,
                "region": names.get(row.key, "") if row.key is not None else "",
                "expected": str(row.expected),
                "high": str(row.high),
                "upside": str((row.high - row.expected).quantize(Decimal("0.01"))),
                "share": round(max(upsides[row.key], 0.0) / total, 4) if total > 0 else 0.0,
                "allocation": str(shares[row.key]),
            }
            for row in sorted(rows, key=lambda row: -upsides[row.key])
        ],
    }


RULE = {
    "en": "Each region receives pool × its upside ÷ the sum of all regions' upsides, where upside = the top "
    "of the 80 % interval − the expected bookings (negative upside counts as none; cents left by rounding go "
    "to the largest remainders).",
    "zh": "每个区域分得：奖金池 × 该区域上行空间 ÷ 所有区域上行空间之和；上行空间 = 80% 区间上限 − 预计签约额"
    "（负值按零计；舍入余下的分按余数从大到小分配）。",
}


def stale_stock(session: Session, organization_id: int, *, days: int = 14) -> list[tuple[int, date]]:
    """Dealers whose latest stock report is older than ``days`` (for the data-source report)."""
    cutoff = utcnow() - timedelta(days=days)
    return [
        (account_id, as_utc(latest).date())
        for account_id, latest in session.execute(
            select(DealerStock.account_id, func.max(DealerStock.reported_at))
            .where(tenant_clause(organization_id, DealerStock))
            .group_by(DealerStock.account_id)
            .having(func.max(DealerStock.reported_at) < cutoff)
        )
        if latest is not None
    ]


STOCK_COLUMNS = ("account", "product", "on_hand")


def account_keys(session: Session, organization_id: int) -> dict[str, int]:
    """How an import file may name an account — its id, its exact name or its external reference —
    mapped to its id (the first account wins when two share a name)."""
    accounts: dict[str, int] = {}
    for account_id, name, ref in session.execute(
        select(Account.id, Account.name, Account.external_ref).where(tenant_clause(organization_id, Account))
    ):
        accounts.setdefault(str(account_id), account_id)
        accounts.setdefault(name, account_id)
        if ref:
            accounts.setdefault(ref, account_id)
    return accounts


def import_stock(session: Session, organization_id: int, lines: Sequence[dict[str, str]]) -> int:
    """Store dealers' stock reports (CSV rows: ``account`` — id, external reference or exact name —
    ``product`` — id or code — ``on_hand``, optional ``on_order``, ``lead_time_days`` and
    ``reported_at``), replacing each dealer and product's previous report. A bad row is refused with
    its line number and nothing is stored."""
    if lines and (missing := [name for name in STOCK_COLUMNS if name not in lines[0]]):
        raise ValidationFailed.one(missing[0], "column is missing")
    accounts = account_keys(session, organization_id)
    products: dict[str, int] = {}
    for product_id, code in session.execute(
        select(Product.id, Product.code).where(tenant_clause(organization_id, Product))
    ):
        products.setdefault(str(product_id), product_id)
        if code:
            products.setdefault(code, product_id)
    parsed: dict[tuple[int, int], dict[str, Any]] = {}
    for number, line in enumerate(lines, start=2):
        where = f"line {number}"
        account = accounts.get((line.get("account") or "").strip())
        product = products.get((line.get("product") or "").strip())
        if account is None:
            raise ValidationFailed.one("account", f"{where}: no such account")
        if product is None:
            raise ValidationFailed.one("product", f"{where}: no such product")
        try:
            on_hand = Decimal((line.get("on_hand") or "").strip())
            on_order = Decimal((line.get("on_order") or "0").strip() or "0")
            lead = (line.get("lead_time_days") or "").strip()
            lead_days = int(lead) if lead else None
            reported = (line.get("reported_at") or "").strip()
            reported_at = datetime.combine(date.fromisoformat(reported), time(12), tzinfo=UTC) if reported else utcnow()
        except (ArithmeticError, ValueError):
            raise ValidationFailed.one(
                "on_hand", f"{where}: a number, a whole lead time and an ISO date are expected"
            ) from None
        if on_hand < 0 or on_order < 0 or (lead_days is not None and not 0 <= lead_days <= 365):
            raise ValidationFailed.one("on_hand", f"{where}: quantities and lead times cannot be negative")
        parsed[(account, product)] = {
            "on_hand": on_hand, "on_order": on_order, "lead_time_days": lead_days, "reported_at": reported_at,
        }  # fmt: skip
    existing = {
        (row.account_id, row.product_id): row
        for row in session.scalars(select(DealerStock).where(tenant_clause(organization_id, DealerStock)))
    }
    for (account_id, product_id), values in parsed.items():
        row = existing.get((account_id, product_id))
        if row is None:
            row = DealerStock(organization_id=organization_id, account_id=account_id, product_id=product_id)
            session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
    session.flush()
    return len(parsed)
