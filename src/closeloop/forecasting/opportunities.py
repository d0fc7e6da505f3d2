"""Win probability for an organization's opportunities: features from the CRM, retraining, and
each open deal's probability with reasons, as a given person may see them.

Features per opportunity as it stood at a moment: the stage, days in that stage, age, amount,
margin, product line, the account's industry, size, employees and tier, the number of activities
logged on the deal by then and days since the latest, and the owner's win rate on the deals they
closed before this one was opened. An open deal is scored as it stands now; a closed deal is learned
from as it stood at points *while it was open* — one per stage it passed through (issue #5: rows
taken at the close taught the model the chance of a deal about to close).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import OPEN_STAGES, CompanySize, Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import RowAccess, tenant_clause, within_organization
from closeloop.forecasting import dwell, past_due, survival
from closeloop.forecasting.models import WinProbabilityModel
from closeloop.forecasting.winprob import MIN_CLOSED, Feature, Reason, WinModel, scores, train
from closeloop.governance.audit.models import AuditEntry
from closeloop.integrations.importing.labels import display_label

FEATURES = [
    Feature("stage", "Stage", "阶段", categorical=True, fields=("stage",), choices=Stage),
    Feature("days_in_stage", "Days in stage", "在当前阶段的天数", fields=("stage_changed_at",)),
    Feature("age_days", "Days since opened", "商机已开启天数", fields=("opened_at",)),
    Feature("amount", "Amount", "金额", fields=("amount",)),
    Feature("margin", "Margin", "毛利率", fields=("margin",)),
    Feature("product_line", "Product line", "产品线", categorical=True, fields=("product_id",)),
    Feature("industry", "Industry", "行业", categorical=True, fields=("account_id", "account.industry")),
    Feature(
        "account_size",
        "Account size",
        "客户规模",
        categorical=True,
        fields=("account_id", "account.size"),
        choices=CompanySize,
    ),
    Feature("employees", "Account employees", "客户员工数", fields=("account_id", "account.employees")),
    Feature("tier", "Account tier", "客户等级", categorical=True, fields=("account_id", "account.tier")),
    Feature("activities", "Activities logged", "已记录的活动数"),
    Feature("days_since_activity", "Days since the last activity", "距上次活动天数"),
    Feature("owner_win_rate", "Owner's win rate", "负责人赢单率", fields=("owner_id",)),
]


def _days(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (as_utc(later) - as_utc(earlier)).total_seconds() / 86400.0


@dataclass(frozen=True)
class Stay:
    """One stay of a deal in an open stage, from its stage history: when it entered and left."""

    stage: Stage
    entered: datetime
    left: datetime


#: where in a stay a closed deal's training row is taken: the fractional parts of multiples of the
#: golden ratio's conjugate, a deterministic sequence spread evenly over [0, 1)
_SPREAD = 0.6180339887498949


OPEN_STAGE_NAMES = frozenset(stage.value for stage in OPEN_STAGES)
#: training points taken in each stay (at different fractions of it); 3 against 1 gave the demo's
#: deals open on past days AUC 0.716 vs 0.711 and Brier 0.2128 vs 0.2143, 6 only 0.721 / 0.2110
POINTS_PER_STAY = 3


def _fraction(deal_id: int, index: int) -> float:
    return (deal_id * 7 + index * 3 + 1) * _SPREAD % 1.0


def stage_history(session: Session, organization_id: int, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Each deal's stage changes (from, to, when, seconds in ``from``), oldest first."""
    result: dict[int, list[Any]] = {}
    for offset in range(0, len(ids), 2000):
        for row in session.execute(
            select(
                StageChange.opportunity_id,
                StageChange.from_stage,
                StageChange.to_stage,
                StageChange.changed_at,
                StageChange.duration_seconds,
            )
            .where(
                tenant_clause(organization_id, StageChange),
                StageChange.opportunity_id.in_(ids[offset : offset + 2000]),
            )
            .order_by(StageChange.changed_at, StageChange.id)
        ):
            result.setdefault(row.opportunity_id, []).append(row)
    return result


def stays(deal: Opportunity, changes: Sequence[Any]) -> list[Stay]:
    """The deal's stays in open stages, in order, read from its stage history: a move out of an open
    stage ends a stay that began ``duration_seconds`` before (or, without it, at the previous move, or
    when the deal was opened). An open deal's current stage is not among them (it has not ended)."""
    result: list[Stay] = []
    opened = previous = as_utc(deal.opened_at)
    for change in changes:
        at = as_utc(change.changed_at)
        if change.from_stage is not None and change.from_stage in OPEN_STAGE_NAMES:
            if change.duration_seconds is not None:
                entered = at - timedelta(seconds=max(int(change.duration_seconds), 0))
            else:
                entered = previous
            # a duration longer than the deal's life (bad data) starts the stay when the deal opened
            result.append(Stay(Stage(change.from_stage), min(max(entered, opened), at), at))
        previous = at
    return result


@dataclass(frozen=True)
class Point:
    """A deal as it stood at ``moment``: in ``stage`` since ``since`` (unknown: ``None``)."""

    deal: Opportunity
    moment: datetime
    stage: str | None
    since: datetime | None


def _current(deal: Opportunity, changes: Sequence[Any], now: datetime) -> Point:
    """An open deal now; a closed one as it stood when it closed (the stage it closed from)."""
    if not Stage(deal.stage).is_closed:
        return Point(deal, now, str(deal.stage), deal.stage_changed_at)
    closing = [change for change in changes if change.to_stage in (Stage.WON.value, Stage.LOST.value)]
    moment = as_utc(deal.closed_at) if deal.closed_at else now
    if not closing or closing[-1].from_stage is None:
        return Point(deal, moment, None, None)
    last = closing[-1]
    since = (
        None
        if last.duration_seconds is None
        else as_utc(last.changed_at) - timedelta(seconds=max(int(last.duration_seconds), 0))
    )
    return Point(deal, moment, str(last.from_stage), since)


def features(session: Session, organization_id: int, deals: Sequence[Opportunity]) -> pd.DataFrame:
    """One row of features per opportunity (in the order given), read within the organization: an
    open deal as it stands now (what is scored); a closed one as it stood when it closed."""
    now = utcnow()
    closed = [deal.id for deal in deals if Stage(deal.stage).is_closed]
    history = stage_history(session, organization_id, closed) if closed else {}
    return rows(session, organization_id, [_current(deal, history.get(deal.id, []), now) for deal in deals])


def training_points(session: Session, organization_id: int, deals: Sequence[Opportunity]) -> list[tuple[Point, float]]:
    """The rows a closed deal is learned from: the deal as it stood at points **while it was open**
    in each stage it passed through (``POINTS_PER_STAY`` deterministic fractions of each stay, so
    that days in stage are spread as they are among the open deals scored), each weighted so that
    the deal counts once. A closed deal without a stage history gives one row at a point of its
    life, its stage unknown.

    Weighing each deal once was measured against weighing each stay once and weighing a stay by its
    days (as the open pipeline on a given day holds deals): on the demo's deals open on past days it
    gave the best AUC and Brier score and the closest total (docs/benchmarks.md, eighth session). Its
    bias: a deal with more stays weighs less in each (won deals pass through more stages).

    A deal's row as of its close would say "negotiation" for every won deal, and the model would learn
    the chance of a deal *about to close* — applied to open deals mid-stage, that over-predicts."""
    history = stage_history(session, organization_id, [deal.id for deal in deals])
    return [pair for deal in deals for pair in points_while_open(deal, history.get(deal.id, []))]


def points_while_open(deal: Opportunity, changes: Sequence[Any]) -> list[tuple[Point, float]]:
    """A closed deal's training points and their weights from its stage changes (oldest first); see
    :func:`training_points`."""
    points: list[Point] = []
    for index, stay in enumerate(stays(deal, changes)):
        for step in range(POINTS_PER_STAY):
            moment = stay.entered + (stay.left - stay.entered) * _fraction(deal.id, index * POINTS_PER_STAY + step)
            points.append(Point(deal, moment, stay.stage.value, stay.entered))
    if not points:
        opened = as_utc(deal.opened_at)
        closed = max(as_utc(deal.closed_at) if deal.closed_at else opened, opened)
        points.append(Point(deal, opened + (closed - opened) * _fraction(deal.id, 0), None, None))
    return [(point, 1.0 / len(points)) for point in points]


def amount_changes(session: Session, organization_id: int, ids: Sequence[int]) -> dict[int, list[tuple[datetime, Any]]]:
    """Each deal's changes of amount from the audit trail, oldest first: when, and the amount *before*
    it (every change of a deal is audited with its before and after — ``records.update`` and the
    import's ``audit.record_many``; creations carry no earlier value and are left out)."""
    result: dict[int, list[tuple[datetime, Any]]] = {}
    for offset in range(0, len(ids), 2000):
        for subject_id, occurred, changes in session.execute(
            select(AuditEntry.subject_id, AuditEntry.occurred_at, AuditEntry.changes)
            .where(
                tenant_clause(organization_id, AuditEntry),
                AuditEntry.subject_type == "opportunity",
                AuditEntry.subject_id.in_(ids[offset : offset + 2000]),
                AuditEntry.action != "opportunity.created",
            )
            .order_by(AuditEntry.seq)
        ):
            pair = changes.get("amount") if isinstance(changes, dict) else None
            if subject_id is not None and isinstance(pair, list) and len(pair) == 2:
                result.setdefault(subject_id, []).append((as_utc(occurred), pair[0]))
    return result


def amount_at(deal: Opportunity, moment: datetime, changes: Sequence[tuple[datetime, Any]]) -> float | None:
    """The deal's amount as it stood at ``moment``: the *before* of its first change of amount after
    that moment, or its amount now when it has not changed since."""
    for occurred, before in changes:
        if occurred > moment:
            try:
                return None if before is None else float(Decimal(str(before)))
            except (ArithmeticError, ValueError):
                return None
    return None if deal.amount is None else float(deal.amount)


def rows(session: Session, organization_id: int, points: Sequence[Point]) -> pd.DataFrame:
    """One row of features per point: the deal's stage, days in it, age, amount (from the audit trail:
    :func:`amount_at`), activities and days since the latest counted up to the point's moment; margin,
    product line and account as they are; the owner's win rate on the deals they closed before this
    one was opened."""
    deals = {point.deal.id: point.deal for point in points}
    ids = list(deals)
    repriced = amount_changes(session, organization_id, ids)
    lines = dict(
        session.execute(
            select(Product.id, ProductLine.name)
            .join(ProductLine, ProductLine.id == Product.product_line_id)
            .where(tenant_clause(organization_id, Product), tenant_clause(organization_id, ProductLine))
        ).all()
    )
    account_ids = {deal.account_id for deal in deals.values() if deal.account_id is not None}
    accounts = {
        account.id: account
        for account in session.scalars(
            within_organization(organization_id, Account).where(Account.id.in_(account_ids or {-1}))
        )
    }
    activity: dict[int, list[datetime]] = {}
    for offset in range(0, len(ids), 2000):
        for opportunity_id, occurred in session.execute(
            select(Activity.opportunity_id, Activity.occurred_at).where(
                tenant_clause(organization_id, Activity), Activity.opportunity_id.in_(ids[offset : offset + 2000])
            )
        ):
            if opportunity_id is not None:
                activity.setdefault(opportunity_id, []).append(as_utc(occurred))
    for times in activity.values():
        times.sort()
    # the owners' closed deals, to give each deal its owner's record *before it was opened* (a deal's
    # own outcome, or any later one, must not leak into its features)
    owner_history: dict[int | None, list[tuple[datetime, bool]]] = {}
    for owner_id, closed_at, final_stage in session.execute(
        select(Opportunity.owner_id, Opportunity.closed_at, Opportunity.stage).where(
            tenant_clause(organization_id, Opportunity),
            Opportunity.stage.in_([Stage.WON, Stage.LOST]),
            Opportunity.closed_at.is_not(None),
        )
    ):
        if closed_at is not None:
            owner_history.setdefault(owner_id, []).append((as_utc(closed_at), final_stage == Stage.WON))
    for records_ in owner_history.values():
        records_.sort()
    table: list[dict[str, Any]] = []
    for point in points:
        deal, as_of = point.deal, as_utc(point.moment)
        times = activity.get(deal.id, [])
        seen = bisect_right(times, as_of)
        opened = as_utc(deal.opened_at)
        # an unowned deal has no owner's record (not that of every other unowned deal)
        earlier = owner_history.get(deal.owner_id, []) if deal.owner_id is not None else []
        before = earlier[: bisect_left(earlier, (opened, False))]
        wins, total = sum(won for _, won in before), len(before)
        account = accounts.get(deal.account_id) if deal.account_id is not None else None
        table.append(
            {
                "stage": point.stage,
                "days_in_stage": _days(as_of, point.since),
                "age_days": _days(as_of, opened),
                "amount": amount_at(deal, as_of, repriced.get(deal.id, ())),
                "margin": None if deal.margin is None else float(deal.margin),
                "product_line": lines.get(deal.product_id) if deal.product_id is not None else None,
                "industry": account.industry if account else None,
                "account_size": account.size if account else None,
                "employees": account.employees if account else None,
                "tier": account.tier if account else None,
                "activities": seen,
                "days_since_activity": _days(as_of, times[seen - 1]) if seen else None,
                "owner_win_rate": wins / total if total > 0 else None,
            }
        )
    return pd.DataFrame(table, columns=[feature.name for feature in FEATURES])


#: share of the closed deals (the earliest by close date) a model is first trained on, to measure it
#: on the rest
HOLDOUT_SPLIT = 0.8


def retrain(session: Session, organization_id: int) -> WinProbabilityModel:
    """Train the organization's model on its closed deals, each as it stood while open
    (:func:`training_points`), and store it (replacing the previous one). The earliest 80 % of closed
    deals by close date are first held against the latest 20 % (no deal on both sides; each deal
    weighs one) to record honest AUC and Brier figures, beside those of the no-model stage × dwell
    rates on the same rows (``stage_rate_auc``, ``stage_rate_brier``); the stored model is then
    fitted on all."""
    deals = list(
        session.scalars(
            within_organization(organization_id, Opportunity)
            .where(Opportunity.stage.in_([Stage.WON, Stage.LOST]))
            .order_by(Opportunity.closed_at, Opportunity.id)
        )
    )
    weighted = training_points(session, organization_id, deals)
    frame = rows(session, organization_id, [point for point, _ in weighted])
    weights = np.array([weight for _, weight in weighted], dtype=float)
    won = np.array([point.deal.stage == Stage.WON for point, _ in weighted], dtype=bool)
    groups = np.array([point.deal.id for point, _ in weighted], dtype=np.int64)
    metrics: dict[str, Any] = {}
    cut = int(len(deals) * HOLDOUT_SPLIT)
    early = np.isin(groups, [deal.id for deal in deals[:cut]])
    deal_won = np.array([deal.stage == Stage.WON for deal in deals], dtype=bool)
    if cut >= MIN_CLOSED and len(set(deal_won[cut:])) == 2 and len(set(deal_won[:cut])) == 2:
        try:
            model = train(frame[early], won[early], FEATURES, weights=weights[early], groups=groups[early])
            late = ~early
            metrics = {
                "holdout": len(deals) - cut,
                **scores(model.predict(frame[late]), won[late], weights=weights[late]),
            }
            # the same rows by the no-model path (the stage's rate for deals that sat in it as
            # long, learned from the training deals), to show whether the model earns its place
            learned = dwell.stays(session, organization_id, closed_before=as_utc(deals[cut].closed_at or utcnow()))
            base = float(np.average(won[early], weights=weights[early]))
            stage_rate = [
                learned[Stage(point.stage)].rate(max(float(days), 0.0))
                if point.stage is not None and pd.notna(days)
                else base
                for (point, _), days, held in zip(weighted, frame["days_in_stage"], late, strict=True)
                if held
            ]
            baseline = scores(stage_rate, won[late], weights=weights[late])
            metrics |= {"stage_rate_auc": baseline["auc"], "stage_rate_brier": baseline["brier"]}
        except ValidationFailed:  # too few of one outcome early on: no holdout figures, still a model
            metrics = {}
    model = train(frame, won, FEATURES, weights=weights, groups=groups)
    stored = session.scalar(within_organization(organization_id, WinProbabilityModel))
    if stored is None:
        stored = WinProbabilityModel(organization_id=organization_id, closed_deals=0, won_deals=0, blob=b"")
        session.add(stored)
    stored.trained_at = utcnow()
    stored.closed_deals = len(deals)
    stored.won_deals = int(deal_won.sum())
    stored.blob = model.dumps()
    stored.metrics = metrics
    session.flush()
    return stored


def stalled_reason(stage: Stage, days: float, decided: float, model_probability: float) -> Reason | None:
    """The reason shown when a deal's time in its stage lowers the model's chance (the percentage
    shown moves): of the deals that sat in the stage as long, only ``decided`` were won or lost within
    a year — the model, learned from closed deals, does not know that."""
    before, after = f"{model_probability:.0%}", f"{model_probability * decided:.0%}"
    if before == after:
        return None
    shown = f"{max(days, 0.0):.0f}"
    return Reason(
        feature="decided_within_year",
        value=f"{decided:.2f}",
        weight=math.log(max(decided, 1e-4)),
        text_en=(
            f"{shown} days in {display_label(Stage, stage.value, 'en')}: of the deals that sat there as long, "
            f"{decided:.0%} were won or lost within a year — lowers the chance from {before} to {after}"
        ),
        text_zh=(
            f"已在{display_label(Stage, stage.value, 'zh_CN')}阶段停留 {shown} 天：停留同样久的商机中一年内有结果"
            f"（赢单或丢单）的占 {decided:.0%}，赢单可能从 {before} 降至 {after}"
        ),
    )


def win_probability(session: Session, actor: Actor, opportunity_id: int, *, locale: str = "en") -> dict[str, Any]:
    """The opportunity's win probability and top reasons, as ``actor`` may see them (the opportunity
    must be visible to them; a reason resting on a field their masks hide is left out). An open deal
    past its expected close date has its probability lowered by :mod:`past_due`, and that comes first
    among the reasons."""
    deal = records.get(session, actor, OPPORTUNITIES, opportunity_id, access=RowAccess.READ)
    trained = session.scalar(within_organization(actor.organization_id, WinProbabilityModel))
    stored = trained if trained is not None and trained.serves else None
    closed = Stage(deal.stage).is_closed
    reasons: list[Reason] = []
    decided = 1.0
    hidden = set(records.masked(session, actor, "opportunity"))
    hidden |= {f"account.{name}" for name in records.masked(session, actor, "account")}
    if closed:
        probability = 1.0 if deal.stage == Stage.WON else 0.0
    elif stored is None:
        # the stage's chance of a win within a year for a deal that has sat in it as long, counting
        # the deals still open (as the bookings forecast does)
        now = utcnow()
        sat = (now - as_utc(deal.stage_changed_at)).total_seconds() / survival.SECONDS_PER_DAY
        stays = survival.stays(session, actor.organization_id, cut=now)
        probability = stays[Stage(deal.stage)].win_probability(max(sat, 0.0))
    else:
        model = WinModel.loads(stored.blob)
        frame = features(session, actor.organization_id, [deal])
        probability, reasons = float(model.predict(frame)[0]), model.reasons(frame, hidden_fields=hidden)[0]
        # the model learned from closed deals only: times the chance that a deal as long in its stage
        # is decided at all within the year — a deal stalled for months rarely is (survival.py)
        now = utcnow()
        sat = (now - as_utc(deal.stage_changed_at)).total_seconds() / survival.SECONDS_PER_DAY
        decided = survival.stays(session, actor.organization_id, cut=now)[Stage(deal.stage)].decided_probability(
            max(sat, 0.0)
        )
        stalled = stalled_reason(Stage(deal.stage), sat, decided, probability)
        probability *= decided
        if stalled is not None and not hidden & {"stage", "stage_changed_at"}:
            reasons.insert(0, stalled)
    shown = [reason.as_dict(locale) for reason in reasons]
    late = None
    if not closed:
        history = past_due.lateness(session, actor.organization_id)
        late = past_due.adjust(probability, deal.expected_close_date, utcnow().date(), history)
        if late is not None:
            probability = late.probability
            shown.insert(0, late.reason(locale))
    about: dict[str, Any] = {"kind": "stage_win_rate"}
    if trained is not None and stored is None:
        # trained, but the stage rates forecast its holdout at least as well: they are used, and said so
        not_used: dict[str, Any] = {"trained_at": as_utc(trained.trained_at).isoformat()}
        not_used |= {k: trained.metrics[k] for k in ("brier", "stage_rate_brier", "holdout") if k in trained.metrics}
        about["model_not_used"] = not_used
    if stored is not None:
        about = {
            "kind": "calibrated_lightgbm",
            "trained_at": as_utc(stored.trained_at).isoformat(),
            "closed_deals": stored.closed_deals,
            "won_deals": stored.won_deals,
            **{key: stored.metrics[key] for key in ("auc", "brier", "holdout") if key in stored.metrics},
        }
        if not hidden & {"stage", "stage_changed_at"}:
            # the model's probability was multiplied by this: the chance a deal as long in its stage is
            # won or lost at all within a year (Aalen–Johansen, the deals still open censored); left
            # out, as the stalled reason is, for a reader who may not see how long it has stalled
            about["decided_within_year"] = round(decided, 4)
    return {
        "opportunity_id": deal.id,
        "probability": round(probability, 4),
        "closed": closed,
        "reasons": shown,
        "model": about,
        # how the probability was lowered because the expected close date has passed (else null)
        "past_due": None if late is None else late.as_dict(),
    }
