"""Bookings forecast (issue #5 item 2): snapshots of the open pipeline simulated forward, what was
booked since, and why the two differ (FC-3).

A **snapshot** is taken by the daily task (or ``closeloop forecast snapshot``), never by a page:
it reads the organization's open deals, their win probabilities (the stored calibrated model, or
the stage win rates before one is trained), the close-date slippage of its won deals over the last
two years and its won deals of the last year (the run-rate basis), simulates them forward
(:mod:`closeloop.forecasting.simulation`) and stores one row per period × dimension value, plus the
deals as they stood, so that attribution can later say what changed.

Categories, as sales teams use them, on the same basis as the expected value — the same open deals,
spread over the months by the same learned slippage (see :mod:`closeloop.forecasting.simulation`):
**commit** = won so far + deals in negotiation; **best case** = commit + deals at proposal;
**pipeline** = won so far + every open deal; **forecast** (expected) = won so far + the open deals
weighted by win probability + run-rate. Deals past their expected close are spread by the slippage
of won deals that were still open that long after their date; deals further past due than any
won deal ever slipped are counted apart (``past_due`` in the answer) for their owners to re-date.

Reads are for roles holding ``forecasts:read`` whose field masks leave ``opportunity.amount``
readable (a forecast is nothing but amounts). A role with the whole organization in reach sees every
dimension; a role with team or own reach sees the owner rows of the people in its reach only (a
region or product-line total would reveal other teams' pipelines).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Forbidden, NotFound, ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import tenant_clause, within_organization
from closeloop.forecasting import calibration, landing, survival, trend
from closeloop.forecasting import past_due as past_due_adjustment
from closeloop.forecasting.models import (
    BookingsForecastRow,
    BookingsSnapshot,
    BookingsSnapshotDeal,
    WinProbabilityModel,
)
from closeloop.forecasting.simulation import (
    DIMENSIONS,
    FloatArray,
    History,
    Period,
    Pipeline,
    add_months,
    beyond_history,
    deal_share,
    horizon,
    simulate,
)
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.permissions import require
from closeloop.org.models import Region, User

SLIPPAGE_DAYS = 730
RUN_RATE_DAYS = 365
#: at most this many slippage values are stored with a snapshot (a seeded sample of the history)
SLIPPAGE_SAMPLE = 2000
#: a deal without an expected close date is assumed to close this many days from now
UNDATED_DAYS = 30
CENT = Decimal("0.01")


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 2))).quantize(CENT)


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- reading the organization's data (set-based) -------------------------------------------------


@dataclass
class OpenDeal:
    id: int
    owner_id: int | None
    account_id: int | None
    region_id: int | None
    product_line_id: int | None
    stage: str
    amount: float
    expected_close: date
    #: when the deal entered the stage it stands in (how long it has sat there sets its win rate)
    stage_since: datetime | None = None


def _deal_columns(organization_id: int) -> Any:
    return (
        select(
            Opportunity.id,
            Opportunity.owner_id,
            Opportunity.account_id,
            Account.region_id,
            Product.product_line_id,
            Opportunity.stage,
            Opportunity.amount,
            Opportunity.expected_close_date,
            Opportunity.opened_at,
            Opportunity.closed_at,
            Opportunity.stage_changed_at,
        )
        .select_from(Opportunity)
        .outerjoin(Account, and_(Account.id == Opportunity.account_id, tenant_clause(organization_id, Account)))
        .outerjoin(Product, and_(Product.id == Opportunity.product_id, tenant_clause(organization_id, Product)))
    )


def open_deals(session: Session, organization_id: int, as_of: date) -> list[OpenDeal]:
    rows = session.execute(
        _deal_columns(organization_id)
        .where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage.in_([stage.value for stage in OPEN_STAGES]),
            Opportunity.amount.is_not(None),
            Opportunity.amount > 0,
        )
        .order_by(Opportunity.id)
    ).all()
    undated = as_of + timedelta(days=UNDATED_DAYS)
    return [
        _open_deal(row, str(row.stage), undated, as_utc(row.stage_changed_at) if row.stage_changed_at else None)
        for row in rows
    ]


def _open_deal(
    row: Any,
    stage: str,
    undated: date,
    stage_since: datetime | None,
    *,
    amount: Any = None,
    expected_close: date | None = None,
    then: bool = False,
) -> OpenDeal:
    """An open deal from a row of :func:`_deal_columns`, at ``stage`` (undated deals close at
    ``undated``); with ``then``, at the given amount and expected close instead of the row's."""
    return OpenDeal(
        id=row.id,
        owner_id=row.owner_id,
        account_id=row.account_id,
        region_id=row.region_id,
        product_line_id=row.product_line_id,
        stage=stage,
        amount=float(amount if then else row.amount),
        expected_close=(expected_close if then else row.expected_close_date) or undated,
        stage_since=stage_since,
    )


#: the fields of a deal a past snapshot reads as they stood then, from the audit trail
AS_OF_FIELDS = ("amount", "expected_close_date")


def values_then(session: Session, organization_id: int, ids: Iterable[int], end: datetime) -> dict[int, dict[str, Any]]:
    """The amount and expected close date of the deals ``ids`` as they stood just before ``end``,
    for those changed since: every change of a deal is audited with its before and after
    (``records.update`` — the API, the web form and automation actions — and the import's
    ``audit.record_many``), so the value then is the *before* of the earliest change after it. One
    query over the organization's opportunity audit entries since ``end`` (creations left out: a
    deal created since — imported history — has no earlier value, so its current one is used)."""
    wanted = set(ids)
    then: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(AuditEntry.subject_id, AuditEntry.changes)
        .where(
            tenant_clause(organization_id, AuditEntry),
            AuditEntry.subject_type == "opportunity",
            AuditEntry.occurred_at >= end,
            AuditEntry.action != "opportunity.created",
        )
        .order_by(AuditEntry.seq)
    )
    for subject_id, changes in rows:
        if subject_id not in wanted or not isinstance(changes, dict):
            continue
        seen = then.setdefault(subject_id, {})
        for name in AS_OF_FIELDS:
            pair = changes.get(name)
            if name not in seen and isinstance(pair, list) and len(pair) == 2:
                seen[name] = pair[0]
    return then


def _as_of_amount(value: Any) -> float | None:
    try:
        return None if value is None else float(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return None


def _as_of_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def open_deals_then(session: Session, organization_id: int, as_of: date) -> list[OpenDeal]:
    """The deals that were open at the end of ``as_of`` (opened by then, closed after it or not at all),
    each as it stood then: the stage of its stage changes up to that moment (and since when), the
    amount and expected close date of the audit trail (:func:`values_then`) — a deal re-dated or
    re-priced since counts with the date and amount it had then."""
    end = _start(as_of + timedelta(days=1))
    rows = session.execute(
        _deal_columns(organization_id)
        .where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.opened_at < end,
            (Opportunity.closed_at.is_(None)) | (Opportunity.closed_at >= end),
        )
        .order_by(Opportunity.id)
    ).all()
    stage_then: dict[int, tuple[str, datetime]] = {}
    for opportunity_id, moved_to, moved_at in session.execute(
        select(StageChange.opportunity_id, StageChange.to_stage, StageChange.changed_at)
        .where(tenant_clause(organization_id, StageChange), StageChange.changed_at < end)
        .order_by(StageChange.changed_at, StageChange.id)
    ):
        stage_then[opportunity_id] = (str(moved_to), as_utc(moved_at))
    changed = values_then(session, organization_id, (row.id for row in rows), end)
    open_values = {stage.value for stage in OPEN_STAGES}
    undated = as_of + timedelta(days=UNDATED_DAYS)
    deals = []
    for row in rows:
        stage_then_value, since = stage_then.get(row.id, (str(row.stage), as_utc(row.opened_at)))
        if stage_then_value not in open_values:
            continue
        before = changed.get(row.id, {})
        amount = _as_of_amount(before["amount"]) if "amount" in before else _as_of_amount(row.amount)
        if amount is None or amount <= 0:
            continue
        expected = (
            _as_of_date(before["expected_close_date"]) if "expected_close_date" in before else row.expected_close_date
        )
        deals.append(
            _open_deal(row, stage_then_value, undated, since, amount=amount, expected_close=expected, then=True)
        )
    return deals


def won_history(session: Session, organization_id: int, as_of: date) -> list[Any]:
    """Won deals closed in the run-rate window (up to and including ``as_of``)."""
    return list(
        session.execute(
            _deal_columns(organization_id).where(
                tenant_clause(organization_id, Opportunity),
                Opportunity.stage == Stage.WON.value,
                Opportunity.amount.is_not(None),
                Opportunity.closed_at >= _start(as_of - timedelta(days=RUN_RATE_DAYS - 1)),
                Opportunity.closed_at < _start(as_of + timedelta(days=1)),
            )
        ).all()
    )


def monthly_bookings(session: Session, organization_id: int, as_of: date) -> list[float]:
    """What the organization booked (won amount) in each of the ``trend.HISTORY_MONTHS`` complete months
    before the month of ``as_of``, oldest first — the series the run-rate's trend is fitted on."""
    first = add_months(as_of.replace(day=1), -trend.HISTORY_MONTHS)
    booked = calibration.won_by_month(session, organization_id, first, as_of.replace(day=1))
    return [booked.get(add_months(first, index), 0.0) for index in range(trend.HISTORY_MONTHS)]


def slippage(session: Session, organization_id: int, as_of: date, *, seed: int) -> list[int]:
    """Days between the expected close date and the actual close of won deals (two years), a seeded
    sample of at most ``SLIPPAGE_SAMPLE``; ``[0]`` when there is no history to learn from."""
    rows = session.execute(
        select(Opportunity.closed_at, Opportunity.expected_close_date).where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage == Stage.WON.value,
            Opportunity.expected_close_date.is_not(None),
            Opportunity.closed_at >= _start(as_of - timedelta(days=SLIPPAGE_DAYS)),
            Opportunity.closed_at < _start(as_of + timedelta(days=1)),
        )
    ).all()
    days = sorted((as_utc(closed).date() - expected).days for closed, expected in rows if closed and expected)
    if not days:
        return [0]
    if len(days) > SLIPPAGE_SAMPLE:
        picked = np.random.default_rng(seed).choice(len(days), size=SLIPPAGE_SAMPLE, replace=False)
        days = sorted(days[int(i)] for i in picked)
    return days


def stage_timing(session: Session, organization_id: int, as_of: date, *, seed: int) -> dict[str, landing.StageTiming]:
    """The stages whose won deals (closed in the slippage window up to the end of ``as_of``) say when a
    deal at that stage closes (:mod:`closeloop.forecasting.landing`), a seeded sample of each."""
    found = landing.timing(
        session,
        organization_id,
        closed_from=_start(as_of - timedelta(days=SLIPPAGE_DAYS)),
        closed_before=_start(as_of + timedelta(days=1)),
    )
    return landing.sample(landing.usable(found), seed=seed)


#: bootstrap replicates of the learned stage rates a snapshot simulates with (each simulation uses one)
RATE_REPLICATES = 200


def probabilities(
    session: Session,
    organization_id: int,
    deals: Sequence[OpenDeal],
    as_of: date,
    *,
    past: bool = False,
    replicates: int = 0,
    seed: int = 0,
) -> tuple[list[float], str, FloatArray | None]:
    """Each open deal's win probability: the stored model's, or its stage's chance of a win within a
    year for a deal that has sat in it as long, counting the deals still open
    (:mod:`closeloop.forecasting.survival`); lowered for a deal past its expected close date
    (:mod:`closeloop.forecasting.past_due`). For a ``past`` snapshot, the stage rates are learned from
    the stays up to the end of ``as_of`` and the lateness from the deals closed by then only (the
    stored model has seen later deals, so it is not used).

    With ``replicates``, the stage rates are also given under that many bootstrap replicates of the
    stays (replicates × deals, lowered for lateness by the same odds ratio), so a simulation
    can carry the uncertainty of the rates; ``None`` for the trained model's probabilities."""
    if past:
        cutoff = _start(as_of + timedelta(days=1))
        raw, method, draws = _stage_probabilities(
            session, organization_id, deals, cutoff, replicates=replicates, seed=seed
        )
        history = past_due_adjustment.lateness(session, organization_id, closed_before=cutoff)
    else:
        raw, method, draws = _model_probabilities(session, organization_id, deals, replicates=replicates, seed=seed)
        history = past_due_adjustment.lateness(session, organization_id)
    adjusted = []
    for deal, probability in zip(deals, raw, strict=True):
        late = past_due_adjustment.adjust(probability, deal.expected_close, as_of, history)
        adjusted.append(probability if late is None else late.probability)
    if draws is not None and deals:
        draws = lowered_alike(draws, np.array(raw), np.array(adjusted))
    return adjusted, method, draws


def lowered_alike(draws: FloatArray, raw: FloatArray, adjusted: FloatArray) -> FloatArray:
    """Each deal's replicate probabilities lowered by the odds ratio its point probability was
    lowered by (past due: :func:`past_due_adjustment.adjust` multiplies the odds by a ratio ≤ 1)."""
    edge = past_due_adjustment.EDGE
    raw_c, adjusted_c = np.clip(raw, edge, 1 - edge), np.clip(adjusted, edge, 1 - edge)
    ratio = np.where(adjusted < raw, (adjusted_c / (1 - adjusted_c)) / (raw_c / (1 - raw_c)), 1.0)
    odds = np.clip(draws, edge, 1 - edge)
    odds = odds / (1 - odds) * ratio[None, :]
    return np.where(ratio[None, :] < 1.0, odds / (1 + odds), draws)


def _model_probabilities(
    session: Session, organization_id: int, deals: Sequence[OpenDeal], *, replicates: int = 0, seed: int = 0
) -> tuple[list[float], str, FloatArray | None]:
    from closeloop.forecasting import opportunities
    from closeloop.forecasting.winprob import WinModel

    stored = session.scalar(within_organization(organization_id, WinProbabilityModel))
    if stored is not None and stored.serves and deals:
        model = WinModel.loads(stored.blob)
        result: list[float] = []
        ids = [deal.id for deal in deals]
        for offset in range(0, len(ids), 2000):
            chunk = ids[offset : offset + 2000]
            records_ = list(
                session.scalars(
                    within_organization(organization_id, Opportunity)
                    .where(Opportunity.id.in_(chunk))
                    .order_by(Opportunity.id)
                )
            )
            result.extend(float(p) for p in model.predict(opportunities.features(session, organization_id, records_)))
        # the model learned from closed deals only: times the chance that a deal as long in its stage
        # is decided at all within the year (deals that stall never close; survival.py)
        now = utcnow()
        stays = survival.stays(session, organization_id, cut=now)
        sat = [
            max((now - deal.stage_since).total_seconds() / survival.SECONDS_PER_DAY, 0.0) if deal.stage_since else 0.0
            for deal in deals
        ]
        decided = survival.decided(stays, [deal.stage for deal in deals], sat)
        return [p * d for p, d in zip(result, decided, strict=True)], "calibrated_lightgbm", None
    return _stage_probabilities(session, organization_id, deals, utcnow(), replicates=replicates, seed=seed)


def _stage_probabilities(
    session: Session,
    organization_id: int,
    deals: Sequence[OpenDeal],
    moment: datetime,
    *,
    replicates: int = 0,
    seed: int = 0,
) -> tuple[list[float], str, FloatArray | None]:
    """Each deal's probability of being won within a year for the days it has sat in its stage at
    ``moment``, learned from every stay in that stage up to ``moment`` — deals still open counted as
    not (yet) decided (:mod:`closeloop.forecasting.survival`) — and, with ``replicates``, under
    bootstrap replicates of those stays (:func:`survival.bootstrap_rates`)."""
    history = survival.stays(session, organization_id, cut=moment)
    sat = [
        max((moment - deal.stage_since).total_seconds() / survival.SECONDS_PER_DAY, 0.0) if deal.stage_since else 0.0
        for deal in deals
    ]
    result = survival.rates(history, [deal.stage for deal in deals], sat)
    draws = (
        survival.bootstrap_rates(history, [deal.stage for deal in deals], sat, replicates=replicates, seed=seed)
        if replicates
        else None
    )
    return result, "stage_win_rate", draws


# --- taking a snapshot -----------------------------------------------------------------------------


def _key_of(item: Any, dimension: str) -> int | None:
    if dimension == "total":
        return None
    column = {"owner": "owner_id", "region": "region_id", "product_line": "product_line_id"}[dimension]
    key: int | None = getattr(item, column)
    return key


def take_snapshot(
    session: Session,
    organization_id: int,
    *,
    simulations: int = 2000,
    seed: int | None = None,
    as_of: date | None = None,
) -> BookingsSnapshot:
    """Simulate the organization's bookings forward from today and store the result. With a past
    ``as_of``, the snapshot is computed as it would have been taken at the end of that day, from the
    history (:func:`open_deals_then`, and win rates, slippage and run-rate learned from the deals
    closed by then) — so that accuracy over time has forecasts to compare before the nightly task
    has run for long."""
    today = utcnow().date()
    past = as_of is not None and as_of < today
    as_of = today if as_of is None or not past else as_of
    seed = as_of.toordinal() if seed is None else seed
    deals = open_deals_then(session, organization_id, as_of) if past else open_deals(session, organization_id, as_of)
    probability, method, probability_draws = probabilities(
        session, organization_id, deals, as_of, past=past, replicates=RATE_REPLICATES, seed=seed
    )
    slips = slippage(session, organization_id, as_of, seed=seed)
    timings = stage_timing(session, organization_id, as_of, seed=seed)
    won = won_history(session, organization_id, as_of)
    keyed = {"owner": "owner_id", "region": "region_id", "product_line": "product_line_id"}
    months, quarters = horizon(as_of)
    growth = trend.growth(monthly_bookings(session, organization_id, as_of), len(months))
    pipeline = Pipeline(
        ids=[deal.id for deal in deals],
        amount=np.array([deal.amount for deal in deals], dtype=np.float64),
        probability=np.array(probability, dtype=np.float64),
        expected_close=[deal.expected_close for deal in deals],
        keys={dimension: [getattr(deal, column) for deal in deals] for dimension, column in keyed.items()},
        stage=[deal.stage for deal in deals],
    )
    history = History(
        amount=np.array([float(row.amount) for row in won], dtype=np.float64),
        cycle_days=np.array(
            [max((as_utc(row.closed_at) - as_utc(row.opened_at)).days, 0) for row in won], dtype=np.int64
        ),
        keys={dimension: [getattr(row, column) for row in won] for dimension, column in keyed.items()},
        window_days=RUN_RATE_DAYS,
        closed_ago=np.array([max((as_of - as_utc(row.closed_at).date()).days, 0) for row in won], dtype=np.int64),
        growth=growth,
    )
    cells = simulate(
        pipeline,
        history,
        np.array(slips, dtype=np.int64),
        as_of,
        simulations=simulations,
        seed=seed,
        timing=timings,
        probability_draws=probability_draws,
    )
    # the interval corrected by this organization's own past forecast errors, per granularity and lead
    pairs = calibration.past_pairs(session, organization_id, as_of)
    adjustments = {
        (period.granularity, lead): calibration.learn(pairs, period.granularity, lead)
        for period in (*months, *quarters)
        for lead in [calibration.lead_of(period.granularity, as_of, period.start)]
    }
    overdue = [deal for deal in deals if deal.expected_close < as_of]
    stale = [deal for deal in overdue if beyond_history(deal.expected_close, slips, as_of)]
    snapshot = BookingsSnapshot(
        organization_id=organization_id,
        taken_at=_start(as_of + timedelta(days=1)) - timedelta(seconds=1) if past else utcnow(),
        as_of=as_of,
        method=method,
        simulations=simulations,
        seed=seed,
        details={
            "open_deals": len(deals),
            "slippage_days": slips,
            "slippage_median": float(np.median(slips)),
            "landing_by_stage": landing.as_details(timings),
            "run_rate_deals": len(won),
            "run_rate_window_days": RUN_RATE_DAYS,
            "run_rate_trend": [round(float(value), 4) for value in growth.factor],
            "run_rate_trend_spread": [round(float(value), 4) for value in growth.spread],
            "past_due_deals": len(overdue),
            "past_due_amount": round(sum(deal.amount for deal in overdue), 2),
            "beyond_history_deals": len(stale),
            "beyond_history_amount": round(sum(deal.amount for deal in stale), 2),
            "interval": {
                "method": calibration.CALIBRATED
                if any(found.applied for found in adjustments.values())
                else calibration.SIMULATED,
                "coverage": 1 - 2 * calibration.TAIL,
                "min_pairs": calibration.MIN_PAIRS,
                "leads": [found.as_dict() for found in adjustments.values()],
                "simulated": {},  # filled below: the total rows' interval before calibration
            },
        },
    )
    session.add(snapshot)
    session.flush()
    rows: list[dict[str, Any]] = []
    simulated: dict[str, list[float]] = {}
    for dimension in DIMENSIONS:
        # each key's won business, grouped once
        won_by_key: dict[int | None, list[tuple[date, float]]] = {}
        for row in won:
            won_by_key.setdefault(_key_of(row, dimension), []).append((as_utc(row.closed_at).date(), float(row.amount)))
        for period in (*months, *quarters):
            keys = {key for (g, p, d, key) in cells if g == period.granularity and p == period.label and d == dimension}
            for key in keys:
                cell = cells[(period.granularity, period.label, dimension, key)]
                booked = sum(amount for day, amount in won_by_key.get(key, []) if period.start <= day < period.end)
                low, high = booked + cell.low, booked + cell.high
                if dimension == "total":
                    simulated[calibration.simulated_key(period.granularity, period.label)] = [
                        round(low, 2),
                        round(high, 2),
                    ]
                found = adjustments[(period.granularity, calibration.lead_of(period.granularity, as_of, period.start))]
                low, high = found.apply(booked + cell.expected, low, high, floor=booked)
                rows.append(
                    {
                        "organization_id": organization_id,
                        "snapshot_id": snapshot.id,
                        "granularity": period.granularity,
                        "period": period.label,
                        "period_start": period.start,
                        "period_end": period.end,
                        "dimension": dimension,
                        "key": key,
                        "won_to_date": _money(booked),
                        "expected": _money(booked + cell.expected),
                        "low": _money(low),
                        "high": _money(high),
                        "run_rate": _money(cell.run_rate),
                        "commit": _money(booked + cell.commit),
                        "best_case": _money(booked + cell.best_case),
                        "pipeline": _money(booked + cell.pipeline),
                        "open_deals": cell.open_deals,
                    }
                )
    snapshot.details = {**snapshot.details, "interval": {**snapshot.details["interval"], "simulated": simulated}}
    session.flush()
    if rows:
        session.execute(insert(BookingsForecastRow), rows)
    if deals:
        session.execute(
            insert(BookingsSnapshotDeal),
            [
                {
                    "organization_id": organization_id,
                    "snapshot_id": snapshot.id,
                    "opportunity_id": deal.id,
                    "owner_id": deal.owner_id,
                    "account_id": deal.account_id,
                    "region_id": deal.region_id,
                    "product_line_id": deal.product_line_id,
                    "stage": deal.stage,
                    "amount": _money(deal.amount),
                    "expected_close_date": deal.expected_close,
                    "probability": float(p),
                }
                for deal, p in zip(deals, probability, strict=True)
            ],
        )
    return snapshot


def snapshot_shares(session: Session, snapshot: BookingsSnapshot, month: date) -> dict[int, float]:
    """Each of the snapshot's deals' share of landing in the month starting on ``month`` (by the
    snapshot's stored landing basis), keyed by opportunity id."""
    slips = [int(day) for day in (snapshot.details or {}).get("slippage_days", [0])]
    timing = landing.from_details((snapshot.details or {}).get("landing_by_stage"))
    period = Period("month", month.isoformat()[:7], month, add_months(month, 1))
    return {
        deal.opportunity_id: deal_share(deal.stage, deal.expected_close_date, slips, snapshot.as_of, period, timing)
        for deal in session.scalars(
            select(BookingsSnapshotDeal).where(
                tenant_clause(snapshot.organization_id, BookingsSnapshotDeal),
                BookingsSnapshotDeal.snapshot_id == snapshot.id,
            )
        )
    }


def backfill_snapshots(
    session: Session, organization_id: int, *, months: int, simulations: int = 500
) -> list[BookingsSnapshot]:
    """Snapshots as of the first day of each of the last ``months`` months (before today), computed
    from the history by :func:`take_snapshot` — for an organization (the demo) whose nightly task has
    not yet run for that long. Days that already have a snapshot are skipped; seeded by their date."""
    today = utcnow().date()
    first = today.replace(day=1)
    taken = set(session.scalars(select(BookingsSnapshot.as_of).where(tenant_clause(organization_id, BookingsSnapshot))))
    days = [add_months(first, -back) for back in range(months, 0, -1)]
    return [
        take_snapshot(session, organization_id, simulations=simulations, as_of=day)
        for day in days
        if day < today and day not in taken
    ]


def prune_snapshots(session: Session, organization_id: int, *, keep_deals_days: int = 400) -> int:
    """Drop the deal copies of snapshots older than ``keep_deals_days`` (their rows stay for accuracy)."""
    cutoff = utcnow() - timedelta(days=keep_deals_days)
    old = select(BookingsSnapshot.id).where(
        tenant_clause(organization_id, BookingsSnapshot), BookingsSnapshot.taken_at < cutoff
    )
    result = session.execute(
        delete(BookingsSnapshotDeal).where(
            tenant_clause(organization_id, BookingsSnapshotDeal), BookingsSnapshotDeal.snapshot_id.in_(old)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- reading, as a person may -----------------------------------------------------------------------


def require_readable(session: Session, actor: Actor) -> None:
    """``forecasts:read`` and an unmasked ``opportunity.amount`` (a forecast is nothing but amounts)."""
    require(actor, "forecasts:read")
    if "amount" in records.masked(session, actor, "opportunity"):
        raise Forbidden("Your field masks hide opportunity.amount, which every forecast figure is made of")


def _whole_organization(actor: Actor) -> bool:
    return actor.scope is RowScope.ALL


def _snapshot(session: Session, actor: Actor, snapshot_id: int | None) -> BookingsSnapshot | None:
    query = select(BookingsSnapshot).where(tenant_clause(actor.organization_id, BookingsSnapshot))
    if snapshot_id is not None:
        found = session.scalar(query.where(BookingsSnapshot.id == snapshot_id))
        if found is None:
            raise NotFound("bookings_snapshot", snapshot_id)
        return found
    return session.scalar(query.order_by(BookingsSnapshot.taken_at.desc(), BookingsSnapshot.id.desc()).limit(1))


def labels(session: Session, organization_id: int, dimension: str, keys: Iterable[int | None]) -> dict[int, str]:
    ids = sorted({key for key in keys if key is not None})
    if not ids or dimension == "total":
        return {}
    model: Any = {"owner": User, "region": Region, "product_line": ProductLine}[dimension]
    name = User.display_name if dimension == "owner" else model.name
    return dict(
        session.execute(select(model.id, name).where(tenant_clause(organization_id, model), model.id.in_(ids))).all()
    )


def _check(granularity: str, dimension: str) -> None:
    if granularity not in ("month", "quarter"):
        raise ValidationFailed.one("granularity", "must be month or quarter")
    if dimension not in DIMENSIONS:
        raise ValidationFailed.one("dimension", f"must be one of: {', '.join(DIMENSIONS)}")


def interval_leads(snapshot: BookingsSnapshot) -> dict[tuple[str, int], dict[str, Any]]:
    """The snapshot's interval calibration by (granularity, lead) (empty for a snapshot from before it)."""
    leads = ((snapshot.details or {}).get("interval") or {}).get("leads") or []
    return {(str(item["granularity"]), int(item["lead"])): item for item in leads}


def _row_dict(
    row: BookingsForecastRow,
    label: str,
    snapshot: BookingsSnapshot | None = None,
    leads: dict[tuple[str, int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A row as the API gives it; with its ``snapshot`` (and that snapshot's :func:`interval_leads`),
    also whether its interval was calibrated and from how many past forecasts."""
    found = (
        (leads if leads is not None else interval_leads(snapshot)).get(
            (row.granularity, calibration.lead_of(row.granularity, snapshot.as_of, row.period_start))
        )
        if snapshot is not None
        else None
    )
    return {
        "period": row.period,
        "granularity": row.granularity,
        "period_start": row.period_start.isoformat(),
        "period_end": row.period_end.isoformat(),
        "dimension": row.dimension,
        "key": row.key,
        "label": label,
        **{
            name: str(getattr(row, name))
            for name in ("won_to_date", "expected", "low", "high", "run_rate", "commit", "best_case", "pipeline")
        },
        # expected = won so far + open expected + run-rate: the part the open deals bring
        "open_expected": str((row.expected - row.won_to_date - row.run_rate).quantize(CENT)),
        "open_deals": row.open_deals,
        # whether low / high were calibrated against the organization's past forecasts, and from how
        # many of them (calibration.py); "simulated": as the simulation gave them
        "interval": calibration.CALIBRATED if found and found["applied"] else calibration.SIMULATED,
        "interval_pairs": int(found["pairs"]) if found else 0,
    }


#: at most this many past-due deals beyond the history are listed by name
PAST_DUE_LISTED = 20


def past_due(session: Session, actor: Actor, snapshot: BookingsSnapshot) -> dict[str, Any]:
    """The snapshot's open deals past their expected close date, within reach: how many and how much,
    and those further past due than any won deal slipped (left out of every period) by name, for
    their owners to re-date or close."""
    slips = [int(day) for day in (snapshot.details or {}).get("slippage_days", [0])]
    query = (
        select(
            BookingsSnapshotDeal.opportunity_id,
            Opportunity.name,
            BookingsSnapshotDeal.amount,
            BookingsSnapshotDeal.expected_close_date,
            BookingsSnapshotDeal.owner_id,
        )
        .join(
            Opportunity,
            and_(
                Opportunity.id == BookingsSnapshotDeal.opportunity_id,
                tenant_clause(actor.organization_id, Opportunity, include_deleted=True),
            ),
        )
        .where(
            tenant_clause(actor.organization_id, BookingsSnapshotDeal),
            BookingsSnapshotDeal.snapshot_id == snapshot.id,
            BookingsSnapshotDeal.expected_close_date < snapshot.as_of,
        )
        .order_by(BookingsSnapshotDeal.expected_close_date, BookingsSnapshotDeal.opportunity_id)
    )
    if not _whole_organization(actor):
        query = query.where(BookingsSnapshotDeal.owner_id.in_(sorted(actor.owner_ids) or [-1]))
    rows = session.execute(query).all()
    stale = [row for row in rows if beyond_history(row.expected_close_date, slips, snapshot.as_of)]
    return {
        "deals": len(rows),
        "amount": str(sum((Decimal(row.amount) for row in rows), Decimal(0)).quantize(CENT)),
        "beyond_history_deals": len(stale),
        "beyond_history_amount": str(sum((Decimal(row.amount) for row in stale), Decimal(0)).quantize(CENT)),
        "longest_slip_days": max(slips or [0]),
        "beyond_history": [
            {
                "opportunity_id": row.opportunity_id,
                "name": row.name,
                "amount": str(Decimal(row.amount).quantize(CENT)),
                "expected_close_date": row.expected_close_date.isoformat(),
                "days_past_due": (snapshot.as_of - row.expected_close_date).days,
            }
            for row in stale[:PAST_DUE_LISTED]
        ],
    }


def forecast(
    session: Session,
    actor: Actor,
    *,
    granularity: str = "month",
    dimension: str = "total",
    snapshot_id: int | None = None,
) -> dict[str, Any]:
    """The latest (or a given) snapshot's rows for one granularity and dimension, within reach."""
    require_readable(session, actor)
    _check(granularity, dimension)
    if not _whole_organization(actor):
        dimension = "owner"
    snapshot = _snapshot(session, actor, snapshot_id)
    if snapshot is None:
        return {"snapshot": None, "granularity": granularity, "dimension": dimension, "items": [], "past_due": None}
    query = select(BookingsForecastRow).where(
        tenant_clause(actor.organization_id, BookingsForecastRow),
        BookingsForecastRow.snapshot_id == snapshot.id,
        BookingsForecastRow.granularity == granularity,
        BookingsForecastRow.dimension == dimension,
    )
    if not _whole_organization(actor):
        query = query.where(BookingsForecastRow.key.in_(sorted(actor.owner_ids) or [-1]))
    rows = list(session.scalars(query.order_by(BookingsForecastRow.period_start, BookingsForecastRow.key)))
    names = labels(session, actor.organization_id, dimension, (row.key for row in rows))
    leads = interval_leads(snapshot)
    return {
        "snapshot": snapshot_dict(snapshot),
        "granularity": granularity,
        "dimension": dimension,
        "items": [
            _row_dict(row, names.get(row.key, "") if row.key is not None else "", snapshot, leads) for row in rows
        ],
        "past_due": past_due(session, actor, snapshot),
    }


def snapshot_dict(snapshot: BookingsSnapshot) -> dict[str, Any]:
    details = snapshot.details or {}
    return {
        "id": snapshot.id,
        "taken_at": as_utc(snapshot.taken_at).isoformat(),
        "as_of": snapshot.as_of.isoformat(),
        "method": snapshot.method,
        "simulations": snapshot.simulations,
        "seed": snapshot.seed,
        "open_deals": details.get("open_deals"),
        "slippage_median_days": details.get("slippage_median"),
        "run_rate_deals": details.get("run_rate_deals"),
        # how the 80 % interval was made: calibrated per (granularity, lead) against this
        # organization's past forecasts of finished periods, or as simulated (too few of them)
        "interval": {
            "method": (details.get("interval") or {}).get("method", calibration.SIMULATED),
            "coverage": (details.get("interval") or {}).get("coverage", 1 - 2 * calibration.TAIL),
            "min_pairs": (details.get("interval") or {}).get("min_pairs", calibration.MIN_PAIRS),
            "leads": list(interval_leads(snapshot).values()),
        },
    }


def _actuals(
    session: Session, actor: Actor, start: date, end: date, owners: Sequence[int] | None
) -> list[tuple[date, Decimal, int | None]]:
    query = select(Opportunity.closed_at, Opportunity.amount, Opportunity.owner_id).where(
        tenant_clause(actor.organization_id, Opportunity),
        Opportunity.stage == Stage.WON.value,
        Opportunity.amount.is_not(None),
        Opportunity.closed_at >= _start(start),
        Opportunity.closed_at < _start(end),
    )
    if owners is not None:
        query = query.where(Opportunity.owner_id.in_(sorted(owners) or [-1]))
    return [
        (as_utc(closed).date(), Decimal(amount), owner)
        for closed, amount, owner in session.execute(query)
        if closed is not None and amount is not None
    ]


def accuracy(session: Session, actor: Actor, *, granularity: str = "month", limit: int = 60) -> dict[str, Any]:
    """Each stored forecast of a period that has begun against what was booked in it (to date while
    it runs): for the whole organization, or summed over the owners in reach. Periods still ahead
    have nothing to compare with and are left out."""
    require_readable(session, actor)
    _check(granularity, "total")
    today = utcnow().date()
    whole = _whole_organization(actor)
    owners = None if whole else sorted(actor.owner_ids)
    query = (
        select(
            BookingsSnapshot.id,
            BookingsSnapshot.as_of,
            BookingsForecastRow.period,
            BookingsForecastRow.period_start,
            BookingsForecastRow.period_end,
            func.sum(BookingsForecastRow.expected),
            func.sum(BookingsForecastRow.low),
            func.sum(BookingsForecastRow.high),
        )
        .join(BookingsSnapshot, BookingsSnapshot.id == BookingsForecastRow.snapshot_id)
        .where(
            tenant_clause(actor.organization_id, BookingsForecastRow),
            tenant_clause(actor.organization_id, BookingsSnapshot),
            BookingsForecastRow.granularity == granularity,
            BookingsForecastRow.dimension == ("total" if whole else "owner"),
            BookingsForecastRow.period_start <= today,
        )
        .group_by(
            BookingsSnapshot.id,
            BookingsSnapshot.as_of,
            BookingsForecastRow.period,
            BookingsForecastRow.period_start,
            BookingsForecastRow.period_end,
        )
        .order_by(BookingsForecastRow.period_start, BookingsSnapshot.as_of)
    )
    if owners is not None:
        query = query.where(BookingsForecastRow.key.in_(owners or [-1]))
    rows = session.execute(query).all()[-limit:]
    if not rows:
        return {"granularity": granularity, "items": []}
    booked = _actuals(session, actor, min(row[3] for row in rows), max(row[4] for row in rows), owners)
    items = []
    for snapshot_id, as_of, period, start, end, expected, low, high in rows:
        actual = sum((amount for day, amount, _ in booked if start <= day < end), Decimal(0))
        expected, low, high = (Decimal(value or 0).quantize(CENT) for value in (expected, low, high))
        complete = end <= today
        items.append(
            {
                "snapshot_id": snapshot_id,
                "as_of": as_of.isoformat(),
                "period": period,
                "complete": complete,
                "expected": str(expected),
                "low": str(low),
                "high": str(high),
                "actual": str(actual.quantize(CENT)),
                "error": str((actual - expected).quantize(CENT)),
                "error_rate": None
                if expected == 0 or not complete
                else round(float(abs(actual - expected) / expected), 4),
                "inside_interval": low <= actual <= high if complete else None,
            }
        )
    return {"granularity": granularity, "items": items}
