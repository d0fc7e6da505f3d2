"""Deviation attribution (FC-3): why what was booked in a period differs from a snapshot's forecast.

The forecast of a period splits exactly into one part per open deal the snapshot saw (amount ×
win probability × the share of its slippage draws that landed in the period) plus the run-rate
for business not yet in the pipeline. The gap ``actual − forecast`` is therefore a sum of per-deal
gaps and a new-business gap, and each piece is given to the first driver that explains it:

1. **lost account** — the deal's account was deleted, or went back to a pool, after the snapshot;
2. **owner change** — the deal or its account changed hands after the snapshot (the pools' owner
   log, ``account_owner_changes``, and the deal's own owner);
3. **stock-outs** — a deal that missed the period (slipped or lost) on a product a dealer reported
   at zero stock during it (``dealer_stock`` rows with nothing on hand, reported after the snapshot
   and before the period's end): the deal's whole share of the forecast;
4. **price changes** — a deal on a product whose average order price in the period moved by
   ``PRICE_CHANGE`` or more against the period before (order lines, quantity-weighted): a missed
   deal's whole share, or a won deal's amount change;
5. **calendar events** — a deal that missed the period though it was expected to close inside an event
   of the organization's calendar (a holiday, a tender date, a regulation change —
   ``calendar_events``, for its region and product line or for all): its whole share;
6. **amount change** — a deal won in the period at an amount other than the snapshot's: the
   difference (the rest of that deal's gap is the ordinary win against its probability);
7. **close date** — a deal that slipped out of the period (won later, or still open at its end:
   its whole forecast share), or was pulled into it (won in the period though expected elsewhere);
8. **new accounts** — business won in the period on accounts created after the snapshot.

While the period runs, a deal still open is **pending** (not yet a deviation), shown on its own line.
What is left is **unexplained**, shown as such: deals won or lost against their probability, and
other new business above or below the run-rate. The contributions add up to the gap exactly, and the
shares (contribution ÷ gap) to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.db.scope import tenant_clause
from closeloop.forecasting import bookings, landing
from closeloop.forecasting.events import during_event, events_between
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot, BookingsSnapshotDeal, DealerStock
from closeloop.forecasting.simulation import Period, deal_share
from closeloop.pools.models import OwnerChange

DRIVERS = (
    "lost_account",
    "owner_change",
    "stock_outs",
    "price_changes",
    "calendar_events",
    "amount_change",
    "close_date",
    "new_accounts",
)
NOT_MEASURED: tuple[str, ...] = ()
#: a product's average order price moving by this share or more counts as a price change
PRICE_CHANGE = 0.05
LABELS = {
    "lost_account": ("Lost accounts (deleted or back to a pool)", "客户流失（删除或退回公海）"),
    "owner_change": ("Owner changes", "负责人变更"),
    "stock_outs": ("Dealer stock-outs (deals on a product out of stock missed the period)",
                   "经销商断货（断货产品的商机未在期内成交）"),
    "price_changes": ("Price changes (the product's order price moved 5 % or more)",
                      "价格变化（产品订单均价变动 5% 及以上）"),
    "calendar_events": ("Calendar events (deals expected to close during a holiday, tender or regulation change)",
                        "日历事件（预计在节假日、招标或政策变化期间成交的商机）"),
    "amount_change": ("Deal amount changes", "商机金额变化"),
    "close_date": ("Close dates moved (slipped out or pulled in)", "成交日期变化（推迟或提前）"),
    "new_accounts": ("New accounts", "新客户"),
    "pending": ("Still open while the period runs (not yet a deviation)", "期间未结束、商机仍在进行（尚非偏差）"),
    "unexplained": ("Unexplained (wins and losses against probability, other new business vs. run-rate)",
                    "未解释部分（按概率的赢单与丢单、其他新业务与运行率之差）"),
}  # fmt: skip


@dataclass
class DealOutcome:
    """One deal the snapshot saw, then and now."""

    forecast: float  # its share of the forecast for the period: amount × probability × landing share
    probability: float
    amount_then: float
    amount_now: float
    won_in_period: bool
    lost: bool
    owner_changed: bool
    account_lost: bool
    #: still open while the period runs: not (yet) a deviation
    pending: bool = False
    #: a dealer reported its product at zero stock during the period
    stock_out: bool = False
    #: its product's average order price moved by PRICE_CHANGE or more against the period before
    price_changed: bool = False
    #: expected to close inside a calendar event (for its region and product line)
    in_event: bool = False


def decompose(deals: list[DealOutcome], new_business: list[tuple[float, bool]], run_rate: float) -> dict[str, float]:
    """Split ``actual − forecast`` over the drivers (plus ``unexplained``); ``new_business`` holds the
    amounts won in the period on deals the snapshot did not see, flagged when the account is new."""
    parts = dict.fromkeys((*DRIVERS, "pending", "unexplained"), 0.0)
    for deal in deals:
        actual = deal.amount_now if deal.won_in_period else 0.0
        gap = actual - deal.forecast
        if deal.account_lost:
            parts["lost_account"] += gap
        elif deal.owner_changed:
            parts["owner_change"] += gap
        elif deal.won_in_period:
            # amount_now − p·q·amount = (amount_now − amount) + p·(1 − q)·amount + (1 − p)·amount: the
            # amount change, the part the snapshot expected in another period (pulled in), the win
            parts["price_changes" if deal.price_changed else "amount_change"] += deal.amount_now - deal.amount_then
            pulled_in = deal.probability * deal.amount_then - deal.forecast
            parts["close_date"] += pulled_in
            parts["unexplained"] += deal.amount_then - deal.forecast - pulled_in
        elif deal.pending:
            parts["pending"] += gap
        elif deal.stock_out:
            parts["stock_outs"] += gap  # missed (slipped or lost) while its product was out of stock
        elif deal.price_changed:
            parts["price_changes"] += gap
        elif deal.in_event:
            parts["calendar_events"] += gap
        elif not deal.lost:
            parts["close_date"] += gap  # slipped: won after the period, or still open at its end
        else:
            parts["unexplained"] += gap  # lost against its probability
    new_accounts = sum(amount for amount, is_new in new_business if is_new)
    other = sum(amount for amount, is_new in new_business if not is_new)
    parts["new_accounts"] += new_accounts
    parts["unexplained"] += other - run_rate
    return parts


def stocked_out_products(session: Session, organization_id: int, after: datetime, before: datetime) -> set[int]:
    """Products some dealer reported with nothing on hand between the snapshot and the period's end."""
    return set(
        session.scalars(
            select(DealerStock.product_id)
            .where(
                tenant_clause(organization_id, DealerStock),
                DealerStock.on_hand <= 0,
                DealerStock.reported_at > after,
                DealerStock.reported_at < before,
            )
            .distinct()
        )
    )


def average_prices(session: Session, organization_id: int, start: date, end: date) -> dict[int, float]:
    """Each product's quantity-weighted average unit price on the orders placed in [start, end)."""
    rows = session.execute(
        select(OrderLine.product_id, func.sum(OrderLine.amount), func.sum(OrderLine.quantity))
        .join(Order, and_(Order.id == OrderLine.order_id, tenant_clause(organization_id, Order)))
        .where(
            tenant_clause(organization_id, OrderLine),
            OrderLine.product_id.is_not(None),
            Order.ordered_at >= bookings._start(start),
            Order.ordered_at < bookings._start(end),
        )
        .group_by(OrderLine.product_id)
    ).all()
    return {
        int(product): float(amount) / float(quantity)
        for product, amount, quantity in rows
        if product is not None and quantity
    }


def repriced_products(session: Session, organization_id: int, start: date, end: date) -> set[int]:
    """Products whose average order price in [start, end) moved by ``PRICE_CHANGE`` or more against
    the stretch of the same length just before (products ordered in both only)."""
    if end <= start:
        return set()
    now = average_prices(session, organization_id, start, end)
    before = average_prices(session, organization_id, start - (end - start), start)
    return {
        product
        for product, price in now.items()
        if before.get(product) and abs(price - before[product]) / before[product] >= PRICE_CHANGE
    }


def _period(snapshot: BookingsSnapshot, label: str) -> Period:
    periods = {row.label: row for row in _periods(snapshot)}
    if label not in periods:
        raise ValidationFailed.one("period", f"is not one of the snapshot's periods ({', '.join(periods)})")
    return periods[label]


def _periods(snapshot: BookingsSnapshot) -> list[Period]:
    from closeloop.forecasting.simulation import horizon

    months, quarters = horizon(snapshot.as_of)
    return [*months, *quarters]


def forecast_of(session: Session, organization_id: int, period: str) -> BookingsSnapshot | None:
    """The forecast a period is judged against: the latest snapshot taken before it began, else the
    first one taken during it (``None`` when no snapshot covers it)."""
    candidates = list(
        session.scalars(
            select(BookingsSnapshot)
            .join(BookingsForecastRow, BookingsForecastRow.snapshot_id == BookingsSnapshot.id)
            .where(
                tenant_clause(organization_id, BookingsSnapshot),
                tenant_clause(organization_id, BookingsForecastRow),
                BookingsForecastRow.period == period,
                BookingsForecastRow.dimension == "total",
            )
            .order_by(BookingsSnapshot.as_of, BookingsSnapshot.id)
        )
    )
    if not candidates:
        return None
    start = next(row.start for row in _periods(candidates[0]) if row.label == period)
    before = [snapshot for snapshot in candidates if snapshot.as_of < start]
    return before[-1] if before else candidates[0]


def attribution(
    session: Session, actor: Actor, *, period: str, snapshot_id: int | None = None, locale: str = "en"
) -> dict[str, Any]:
    """The gap between a snapshot's forecast of ``period`` and what was booked, by driver, within
    the caller's reach (the whole organization, or the deals owned by the people in reach)."""
    bookings.require_readable(session, actor)
    snapshot = (
        bookings._snapshot(session, actor, snapshot_id)
        if snapshot_id is not None
        else forecast_of(session, actor.organization_id, period)
    )
    if snapshot is None:
        raise ValidationFailed.one("period", "no stored forecast covers it")
    window = _period(snapshot, period)
    org = actor.organization_id
    whole = bookings._whole_organization(actor)
    owners = set(actor.owner_ids)
    today = utcnow().date()
    end = min(window.end, today + timedelta(days=1))
    running = window.end > today
    slips = [int(day) for day in (snapshot.details or {}).get("slippage_days", [0])]
    timing = landing.from_details((snapshot.details or {}).get("landing_by_stage"))

    seen = list(
        session.scalars(
            select(BookingsSnapshotDeal).where(
                tenant_clause(org, BookingsSnapshotDeal), BookingsSnapshotDeal.snapshot_id == snapshot.id
            )
        )
    )
    now = {
        row.id: row
        for row in session.execute(
            select(
                Opportunity.id,
                Opportunity.stage,
                Opportunity.amount,
                Opportunity.owner_id,
                Opportunity.account_id,
                Opportunity.product_id,
                Opportunity.closed_at,
                Opportunity.deleted_at,
            ).where(
                tenant_clause(org, Opportunity, include_deleted=True),
                Opportunity.id.in_([deal.opportunity_id for deal in seen] or [-1]),
            )
        )
    }
    after = as_utc(snapshot.taken_at)
    changed_accounts: dict[int, bool] = {}  # account → went back to a pool (True) or changed hands
    for account_id, to_owner in session.execute(
        select(OwnerChange.account_id, OwnerChange.to_owner_id).where(
            tenant_clause(org, OwnerChange),
            OwnerChange.changed_at > after,
            OwnerChange.changed_at < bookings._start(end),
        )
    ):
        changed_accounts[account_id] = changed_accounts.get(account_id, False) or to_owner is None
    deleted_accounts = set(
        session.scalars(
            select(Account.id).where(
                tenant_clause(org, Account, include_deleted=True),
                Account.deleted_at.is_not(None),
                Account.deleted_at > after,
            )
        )
    )

    stocked_out = stocked_out_products(session, org, after, bookings._start(end))
    repriced = repriced_products(session, org, window.start, end)
    events = events_between(session, org, window.start, window.end)

    def in_reach(owner_then: int | None, owner_now: int | None) -> bool:
        return whole or owner_then in owners or owner_now in owners

    outcomes: list[DealOutcome] = []
    for deal in seen:
        current = now.get(deal.opportunity_id)
        owner_now = current.owner_id if current else None
        if not in_reach(deal.owner_id, owner_now):
            continue
        share = deal_share(deal.stage, deal.expected_close_date, slips, snapshot.as_of, window, timing)
        amount_then = float(deal.amount)
        closed = as_utc(current.closed_at).date() if current is not None and current.closed_at else None
        won = current is not None and current.stage == Stage.WON.value and current.deleted_at is None
        won_in = won and closed is not None and window.start <= closed < end
        account_lost = deal.account_id in deleted_accounts or changed_accounts.get(deal.account_id or -1, False)
        outcomes.append(
            DealOutcome(
                forecast=amount_then * deal.probability * share,
                probability=deal.probability,
                amount_then=amount_then,
                amount_now=float(current.amount or 0) if current is not None else 0.0,
                won_in_period=won_in,
                lost=current is None or current.deleted_at is not None or current.stage == Stage.LOST.value,
                pending=running
                and current is not None
                and current.deleted_at is None
                and Stage(current.stage) in OPEN_STAGES,
                owner_changed=(current is not None and current.owner_id != deal.owner_id)
                or (deal.account_id in changed_accounts),
                account_lost=account_lost,
                stock_out=current is not None and current.product_id in stocked_out,
                price_changed=current is not None and current.product_id in repriced,
                in_event=during_event(events, deal.expected_close_date, deal.region_id, deal.product_line_id),
            )
        )
    seen_ids = {deal.opportunity_id for deal in seen}
    fresh_query = (
        select(Opportunity.id, Opportunity.amount, Opportunity.owner_id, Account.created_at)
        .select_from(Opportunity)
        .outerjoin(Account, Account.id == Opportunity.account_id)
        .where(
            tenant_clause(org, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.amount.is_not(None),
            Opportunity.closed_at >= bookings._start(window.start),
            Opportunity.closed_at > after,  # what was won before the snapshot is in its won-to-date
            Opportunity.closed_at < bookings._start(end),
        )
    )
    if not whole:
        fresh_query = fresh_query.where(Opportunity.owner_id.in_(sorted(owners) or [-1]))
    new_business = [
        (float(amount), created is not None and as_utc(created) > after)
        for opportunity_id, amount, _owner, created in session.execute(fresh_query)
        if opportunity_id not in seen_ids and amount is not None
    ]
    rows_query = select(BookingsForecastRow).where(
        tenant_clause(org, BookingsForecastRow),
        BookingsForecastRow.snapshot_id == snapshot.id,
        BookingsForecastRow.period == window.label,
        BookingsForecastRow.dimension == ("total" if whole else "owner"),
    )
    if not whole:
        rows_query = rows_query.where(BookingsForecastRow.key.in_(sorted(owners) or [-1]))
    rows = list(session.scalars(rows_query))
    run_rate = sum(float(row.run_rate) for row in rows)
    booked_before = sum(float(row.won_to_date) for row in rows)
    # business won before the snapshot is in both the forecast and the actual (its won-to-date)
    parts = decompose(outcomes, new_business, run_rate)
    forecast_value = booked_before + sum(deal.forecast for deal in outcomes) + run_rate
    actual_value = (
        booked_before
        + sum(deal.amount_now for deal in outcomes if deal.won_in_period)
        + sum(amount for amount, _ in new_business)
    )
    gap = actual_value - forecast_value
    zh = locale.startswith("zh")
    items = []
    for name in (*DRIVERS, "pending", "unexplained"):
        value = parts[name]
        items.append(
            {
                "driver": name,
                "label": LABELS[name][1 if zh else 0],
                "contribution": str(bookings._money(value)),
                "share": None if abs(gap) < 0.005 else round(value / gap, 4) + 0.0,  # + 0.0: no "-0.0 %"
            }
        )
    return {
        "snapshot": bookings.snapshot_dict(snapshot),
        "period": window.label,
        "complete": window.end <= today,
        "forecast": str(bookings._money(forecast_value)),
        "actual": str(bookings._money(actual_value)),
        "gap": str(bookings._money(gap)),
        "items": items,
        "not_measured": list(NOT_MEASURED),
    }
