"""Scorecards (FC-5): how far each manager's team landed from its forecast, and whether the data the
forecasts rest on kept arriving — so that a miss caused by a broken feed is not blamed on a person.

**Deviation rate.** For each finished period, the forecast is the *first* snapshot taken in it (the
forecast the team started the period with); the team is the manager and everyone reporting to them,
directly or not (``users.manager_id``) — the same team as the data-quality KPIs beside it; someone
with neither a manager nor reports answers for themselves. The rate is ``|actual − expected| ÷
expected`` of the team's owner rows. A team's row is shown only to those whose reach holds its
manager (and so the whole team): never a partial figure under a team's name.

**Data-source stability.** Each input of the forecasts is checked for arrivals: opportunities
(changes), activities, orders, dealer stock reports and the forecast snapshots themselves. A source
whose last week saw nothing although the four weeks before did has **stopped**; one whose last
week saw under half its usual weekly volume is **late**; dealers whose latest stock report is more
than two weeks old are listed by name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.core import calendar
from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Forbidden, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.orders.models import Order
from closeloop.db.scope import tenant_clause
from closeloop.forecasting import actions, bookings, landing
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot, BookingsSnapshotDeal, DealerStock
from closeloop.forecasting.simulation import Period, deal_share
from closeloop.governance.permissions import require
from closeloop.org.models import User
from closeloop.quality import kpis

CENT = Decimal("0.01")


def _first_forecasts(org: int, granularity: str, today: date) -> Any:
    """The first snapshot taken inside each period of ``granularity`` finished by ``today`` (a subquery
    of ``period, snapshot_id``): the forecast a period started with."""
    return (
        select(BookingsForecastRow.period, func.min(BookingsSnapshot.id).label("snapshot_id"))
        .join(BookingsSnapshot, BookingsSnapshot.id == BookingsForecastRow.snapshot_id)
        .where(
            tenant_clause(org, BookingsForecastRow),
            tenant_clause(org, BookingsSnapshot),
            BookingsForecastRow.granularity == granularity,
            BookingsForecastRow.dimension == "total",
            BookingsSnapshot.as_of >= BookingsForecastRow.period_start,
            BookingsSnapshot.as_of < BookingsForecastRow.period_end,
            BookingsForecastRow.period_end <= today,
        )
        .group_by(BookingsForecastRow.period)
        .subquery()
    )


def rate(expected: Decimal, actual: Decimal) -> float | None:
    """The deviation rate ``|actual − expected| ÷ expected`` (``None`` when nothing was expected)."""
    return None if expected == 0 else round(float(abs(actual - expected) / expected), 4)


@dataclass(frozen=True, slots=True)
class OwnerDeviation:
    """One person's deviation over one finished period: the forecast the period started with for
    their own rows, what they booked in it, and the rate."""

    period: str
    period_start: date
    period_end: date
    expected: Decimal
    actual: Decimal
    rate: float | None


def owner_deviation(
    session: Session, organization_id: int, owner_id: int, *, as_of: date, granularity: str = "month"
) -> OwnerDeviation | None:
    """The deviation of ``owner_id`` over the latest period of ``granularity`` finished by ``as_of``,
    measured like :func:`deviation_by_manager` (the period's first snapshot against the deals won in
    it), or ``None`` when no snapshot was taken inside that period. No reach check: the caller is the
    rule engine, which acts for the organization (its decisions are read under the masks)."""
    bookings._check(granularity, "owner")
    org = organization_id
    first = _first_forecasts(org, granularity, as_of)
    latest = session.execute(
        select(BookingsForecastRow.period, BookingsForecastRow.period_start, BookingsForecastRow.period_end)
        .join(
            first,
            (first.c.snapshot_id == BookingsForecastRow.snapshot_id) & (first.c.period == BookingsForecastRow.period),
        )
        .where(tenant_clause(org, BookingsForecastRow), BookingsForecastRow.granularity == granularity)
        .order_by(BookingsForecastRow.period_end.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    expected = session.scalar(
        select(func.coalesce(func.sum(BookingsForecastRow.expected), 0))
        .join(
            first,
            (first.c.snapshot_id == BookingsForecastRow.snapshot_id) & (first.c.period == BookingsForecastRow.period),
        )
        .where(
            tenant_clause(org, BookingsForecastRow),
            BookingsForecastRow.granularity == granularity,
            BookingsForecastRow.dimension == "owner",
            BookingsForecastRow.period == latest.period,
            BookingsForecastRow.key == owner_id,
        )
    )
    actual = session.scalar(
        select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
            tenant_clause(org, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.owner_id == owner_id,
            Opportunity.closed_at >= datetime.combine(latest.period_start, time.min, tzinfo=UTC),
            Opportunity.closed_at < datetime.combine(latest.period_end, time.min, tzinfo=UTC),
        )
    )
    forecast, booked = Decimal(expected or 0).quantize(CENT), Decimal(actual or 0).quantize(CENT)
    return OwnerDeviation(
        latest.period, latest.period_start, latest.period_end, forecast, booked, rate(forecast, booked)
    )


#: how old a snapshot taken before a week may be to stand for the week's forecast
WEEK_SNAPSHOT_AGE = timedelta(days=7)


def owner_week_deviation(
    session: Session, organization_id: int, owner_id: int, *, now: datetime, timezone: str
) -> OwnerDeviation | None:
    """The deviation of ``owner_id`` over the last ISO week (Monday to Sunday in ``timezone``) finished
    by ``now``. The bookings forecast is kept by month and quarter, so the week's forecast is derived
    from the deals of the snapshot the week started with (the latest taken in the week before its
    Monday, else the first taken during it), as attribution does: each deal's amount × win probability × the share of
    its slippage draws that close it inside the week, plus what the owner had already won in the week
    before a mid-week snapshot. The run-rate of business not yet in the pipeline is not in a week's
    forecast. ``None`` when no snapshot (with its deals) stands for the week."""
    local_today = calendar.local_date(as_utc(now), timezone)
    first = calendar.week_of(local_today)[0] - timedelta(days=7)
    last = first + timedelta(days=6)
    start, end = calendar.days_as_utc(first, last, timezone)
    org = organization_id
    snapshots = select(BookingsSnapshot).where(tenant_clause(org, BookingsSnapshot))
    snapshot = session.scalar(
        snapshots.where(BookingsSnapshot.taken_at < start, BookingsSnapshot.taken_at >= start - WEEK_SNAPSHOT_AGE)
        .order_by(BookingsSnapshot.taken_at.desc())
        .limit(1)
    ) or session.scalar(
        snapshots.where(BookingsSnapshot.taken_at >= start, BookingsSnapshot.taken_at < end)
        .order_by(BookingsSnapshot.taken_at)
        .limit(1)
    )
    if snapshot is None:
        return None
    deals = session.execute(
        select(
            BookingsSnapshotDeal.amount,
            BookingsSnapshotDeal.probability,
            BookingsSnapshotDeal.expected_close_date,
            BookingsSnapshotDeal.stage,
        ).where(
            tenant_clause(org, BookingsSnapshotDeal),
            BookingsSnapshotDeal.snapshot_id == snapshot.id,
            BookingsSnapshotDeal.owner_id == owner_id,
        )
    ).all()
    has_deals = session.scalar(
        select(func.count(BookingsSnapshotDeal.id)).where(
            tenant_clause(org, BookingsSnapshotDeal), BookingsSnapshotDeal.snapshot_id == snapshot.id
        )
    )
    if not has_deals and snapshot.details.get("open_deals"):
        return None  # the snapshot's deal copies were pruned: the week cannot be told
    slips = [int(day) for day in snapshot.details.get("slippage_days") or []]
    timing = landing.from_details(snapshot.details.get("landing_by_stage"))
    iso = first.isocalendar()
    week = Period("week", f"{iso.year}-W{iso.week:02d}", first, last + timedelta(days=1))
    forecast = sum(
        (
            float(amount) * probability * deal_share(stage, close, slips, snapshot.as_of, week, timing)
            for amount, probability, close, stage in deals
        ),
        0.0,
    )
    taken = as_utc(snapshot.taken_at)
    expected = Decimal(str(round(forecast, 2))) + (_won(session, org, owner_id, start, taken) if taken > start else 0)
    actual = _won(session, org, owner_id, start, end)
    expected, actual = Decimal(expected).quantize(CENT), Decimal(actual).quantize(CENT)
    return OwnerDeviation(week.label, first, week.end, expected, actual, rate(expected, actual))


def _won(session: Session, organization_id: int, owner_id: int, start: datetime, end: datetime) -> Decimal:
    """What ``owner_id`` won in ``[start, end)``."""
    total = session.scalar(
        select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.owner_id == owner_id,
            Opportunity.closed_at >= start,
            Opportunity.closed_at < end,
        )
    )
    return Decimal(total or 0)


def deviation_by_manager(session: Session, actor: Actor, *, granularity: str = "month") -> dict[str, Any]:
    """Per finished period and manager: the team's expected bookings at the period's start, what it
    booked, and the deviation rate (teams whose manager is in ``actor``'s reach only, whole)."""
    bookings.require_readable(session, actor)
    bookings._check(granularity, "owner")
    org = actor.organization_id
    today = utcnow().date()
    users = session.execute(select(User.id, User.manager_id).where(tenant_clause(org, User))).all()
    names = dict(session.execute(select(User.id, User.display_name).where(tenant_clause(org, User))).all())
    teams = kpis.teams(users)
    # someone with neither a manager nor reports answers for themselves
    teams.update({user.id: {user.id} for user in users if user.manager_id is None and user.id not in teams})
    if actor.scope is not RowScope.ALL:
        teams = {head: members for head, members in teams.items() if head in actor.owner_ids}
    member_of: dict[int, list[int]] = defaultdict(list)
    for head, members in teams.items():
        for member in members:
            member_of[member].append(head)
    first = _first_forecasts(org, granularity, today)
    rows = session.execute(
        select(
            BookingsForecastRow.period,
            BookingsForecastRow.period_start,
            BookingsForecastRow.period_end,
            BookingsForecastRow.key,
            BookingsForecastRow.expected,
        )
        .join(
            first,
            (first.c.snapshot_id == BookingsForecastRow.snapshot_id) & (first.c.period == BookingsForecastRow.period),
        )
        .where(
            tenant_clause(org, BookingsForecastRow),
            BookingsForecastRow.granularity == granularity,
            BookingsForecastRow.dimension == "owner",
        )
    ).all()
    if not rows:
        return {"granularity": granularity, "items": []}
    start, end = min(row.period_start for row in rows), max(row.period_end for row in rows)
    won = session.execute(
        select(Opportunity.owner_id, Opportunity.closed_at, Opportunity.amount).where(
            tenant_clause(org, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.amount.is_not(None),
            Opportunity.closed_at >= datetime.combine(start, time.min, tzinfo=UTC),
            Opportunity.closed_at < datetime.combine(end, time.min, tzinfo=UTC),
        )
    ).all()
    periods = {row.period: (row.period_start, row.period_end) for row in rows}

    expected: dict[tuple[str, int | None], Decimal] = defaultdict(Decimal)
    actual: dict[tuple[str, int | None], Decimal] = defaultdict(Decimal)
    for row in rows:
        for team in member_of.get(row.key, ()):
            expected[(row.period, team)] += Decimal(row.expected)
    for owner, closed, amount in won:
        if closed is None or amount is None or owner not in member_of:
            continue
        day = as_utc(closed).date()
        for period, (period_start, period_end) in periods.items():
            if period_start <= day < period_end:
                for team in member_of[owner]:
                    actual[(period, team)] += Decimal(amount)
    items = []
    for period, manager in sorted(set(expected) | set(actual), key=lambda k: (k[0], k[1] or 0)):
        forecast, booked = expected[(period, manager)], actual[(period, manager)]
        items.append(
            {
                "period": period,
                "manager_id": manager,
                "manager": names.get(manager, "") if manager is not None else "",
                "expected": str(forecast.quantize(CENT)),
                "actual": str(booked.quantize(CENT)),
                "deviation_rate": rate(forecast, booked),
            }
        )
    return {"granularity": granularity, "items": items}


def _weekly(session: Session, model: Any, column: Any, org: int, now: datetime) -> tuple[int, float, Any]:
    """Arrivals in the last 7 days, the weekly mean of the 4 weeks before, and the latest arrival."""
    week = now - timedelta(days=7)
    before = now - timedelta(days=35)
    recent, earlier, latest = session.execute(
        select(
            func.count().filter(column >= week),
            func.count().filter(column < week, column >= before),
            func.max(column),
        ).where(tenant_clause(org, model, include_deleted=True))
    ).one()
    return int(recent or 0), float(earlier or 0) / 4.0, latest


def data_sources(session: Session, actor: Actor) -> dict[str, Any]:
    """Which inputs of the forecasts arrived late or stopped updating."""
    bookings.require_readable(session, actor)
    org = actor.organization_id
    now = utcnow()
    sources = {
        "opportunities": (Opportunity, Opportunity.updated_at),
        "activities": (Activity, Activity.created_at),
        "orders": (Order, Order.created_at),
        "dealer_stock": (DealerStock, DealerStock.reported_at),
        "forecast_snapshots": (BookingsSnapshot, BookingsSnapshot.taken_at),
    }
    items = []
    for name, (model, column) in sources.items():
        recent, usual, latest = _weekly(session, model, column, org, now)
        if recent == 0 and usual > 0:
            status = "stopped"
        elif usual > 0 and recent < 0.5 * usual:
            status = "late"
        elif recent == 0 and usual == 0:
            status = "no_data"
        else:
            status = "ok"
        items.append(
            {
                "source": name,
                "status": status,
                "last_arrival": as_utc(latest).isoformat() if latest is not None else None,
                "last_7_days": recent,
                "weekly_usual": round(usual, 2),
            }
        )
    stale = actions.stale_stock(session, org)
    names = dict(
        session.execute(
            select(Account.id, Account.name).where(
                tenant_clause(org, Account), Account.id.in_([account for account, _ in stale] or [-1])
            )
        ).all()
    )
    visible = None
    if actor.scope is not RowScope.ALL:
        visible = set(
            session.scalars(
                select(Account.id).where(
                    tenant_clause(org, Account), Account.owner_id.in_(sorted(actor.owner_ids) or [-1])
                )
            )
        )
    return {
        "items": items,
        "stale_dealers": [
            {"account_id": account, "account": names.get(account, ""), "last_report": day.isoformat()}
            for account, day in stale
            if visible is None or account in visible
        ],
    }


#: the data-quality KPIs a scorecard shows (closeloop.quality.kpis), in this order
QUALITY_KPIS = ("completeness", "title_freshness", "stage_log_completeness", "duplicate_rate")


def team_scorecard(session: Session, actor: Actor, *, granularity: str = "month", history: int = 12) -> dict[str, Any]:
    """One row per manager's team in the actor's reach (a rep: one row, their own figures): the
    data-quality KPIs of the records the team owns, latest and per earlier scan, next to the team's
    forecast-deviation rate, latest finished period and the earlier ones.

    Quality is read from the KPI snapshots every scan takes (team: the manager and everyone reporting
    to them, directly or not). The deviation is :func:`deviation_by_manager`'s, shown only to those
    who may read forecasts (``forecasts:read`` and an unmasked ``opportunity.amount``); for anyone
    else ``forecast_hidden`` says why and the rows carry quality alone.
    """
    require(actor, "quality:read")
    if history < 0 or history > 100:
        raise ValidationFailed.one("history", "must be between 0 and 100")
    own = actor.scope is RowScope.OWN
    quality = kpis.kpi_report(session, actor, group_by="owner" if own else "team", history=history)
    deviations: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    hidden: str | None = None
    if own:
        hidden = "own_figures_only"
    else:
        try:
            bookings.require_readable(session, actor)
        except Forbidden as refused:
            hidden = str(refused)
        else:
            for item in deviation_by_manager(session, actor, granularity=granularity)["items"]:
                deviations[item["manager_id"]].append(
                    {key: item[key] for key in ("period", "expected", "actual", "deviation_rate")}
                )
    rows = []
    for group in quality:
        periods = sorted(deviations.pop(group["group_id"], []), key=lambda item: item["period"], reverse=True)
        rows.append(
            {
                "manager_id": None if own else group["group_id"],
                "user_id": group["group_id"] if own else None,
                "name": group["name"],
                "quality": {
                    "scan_id": group["scan_id"],
                    "taken_at": group["taken_at"],
                    **{key: group["metrics"].get(key) for key in QUALITY_KPIS},
                    "defects_total": group["metrics"].get("defects_total"),
                },
                "quality_history": group["history"],
                "forecast": periods[0] if periods else None,
                "forecast_history": periods[: history + 1],
            }
        )
    return {
        "granularity": granularity,
        "scope": "own" if own else "team",
        "forecast_hidden": hidden,
        "kpis": list(QUALITY_KPIS),
        "items": rows,
    }
