"""Win probability for an organization's opportunities: features from the CRM, retraining, and
each open deal's probability with reasons, as a given person may see them.

Features per opportunity (for a closed deal, as they stood when it closed; for an open one, now):
the stage (for a closed deal, the stage it left when it was won or lost), days in that stage, age,
amount, margin, product line, the account's industry, size, employees and tier, the number of
activities logged on the deal and days since the latest, and the owner's win rate on the deals they
closed before this one was opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import tenant_clause, within_organization
from closeloop.forecasting import dwell, past_due
from closeloop.forecasting.models import WinProbabilityModel
from closeloop.forecasting.winprob import Feature, Reason, WinModel, scores, train

FEATURES = [
    Feature("stage", "Stage", "阶段", categorical=True, fields=("stage",)),
    Feature("days_in_stage", "Days in stage", "在当前阶段的天数", fields=("stage_changed_at",)),
    Feature("age_days", "Days since opened", "商机已开启天数", fields=("opened_at",)),
    Feature("amount", "Amount", "金额", fields=("amount",)),
    Feature("margin", "Margin", "毛利率", fields=("margin",)),
    Feature("product_line", "Product line", "产品线", categorical=True, fields=("product_id",)),
    Feature("industry", "Industry", "行业", categorical=True, fields=("account_id", "account.industry")),
    Feature("account_size", "Account size", "客户规模", categorical=True, fields=("account_id", "account.size")),
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


def features(session: Session, organization_id: int, deals: Sequence[Opportunity]) -> pd.DataFrame:
    """One row of features per opportunity (in the order given), read within the organization."""
    ids = [deal.id for deal in deals]
    now = utcnow()
    closing = {
        row.opportunity_id: row
        for row in session.execute(
            select(StageChange.opportunity_id, StageChange.from_stage, StageChange.duration_seconds)
            .where(
                tenant_clause(organization_id, StageChange),
                StageChange.opportunity_id.in_(ids),
                StageChange.to_stage.in_([Stage.WON, Stage.LOST]),
            )
            .order_by(StageChange.changed_at)
        )
    }
    lines = dict(
        session.execute(
            select(Product.id, ProductLine.name)
            .join(ProductLine, ProductLine.id == Product.product_line_id)
            .where(tenant_clause(organization_id, Product), tenant_clause(organization_id, ProductLine))
        ).all()
    )
    account_ids = {deal.account_id for deal in deals if deal.account_id is not None}
    accounts = {
        account.id: account
        for account in session.scalars(
            within_organization(organization_id, Account).where(Account.id.in_(account_ids or {-1}))
        )
    }
    activity_rows = session.execute(
        select(Activity.opportunity_id, Activity.occurred_at).where(
            tenant_clause(organization_id, Activity), Activity.opportunity_id.in_(ids)
        )
    ).all()
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
    rows: list[dict[str, Any]] = []
    for deal in deals:
        is_closed = Stage(deal.stage).is_closed
        as_of = as_utc(deal.closed_at) if is_closed and deal.closed_at else now
        change = closing.get(deal.id)
        stage: str | None
        in_stage: float | None
        if is_closed:
            stage = str(change.from_stage) if change is not None and change.from_stage else None
            in_stage = change.duration_seconds / 86400.0 if change and change.duration_seconds is not None else None
        else:
            stage, in_stage = str(deal.stage), _days(as_of, deal.stage_changed_at)
        seen = [as_utc(at) for opportunity, at in activity_rows if opportunity == deal.id and as_utc(at) <= as_of]
        opened = as_utc(deal.opened_at)
        earlier = [won for closed_at, won in owner_history.get(deal.owner_id, []) if closed_at < opened]
        wins, total = sum(earlier), len(earlier)
        account = accounts.get(deal.account_id) if deal.account_id is not None else None
        rows.append(
            {
                "stage": stage,
                "days_in_stage": in_stage,
                "age_days": _days(as_of, deal.opened_at),
                "amount": None if deal.amount is None else float(deal.amount),
                "margin": None if deal.margin is None else float(deal.margin),
                "product_line": lines.get(deal.product_id) if deal.product_id is not None else None,
                "industry": account.industry if account else None,
                "account_size": account.size if account else None,
                "employees": account.employees if account else None,
                "tier": account.tier if account else None,
                "activities": len(seen),
                "days_since_activity": _days(as_of, max(seen)) if seen else None,
                "owner_win_rate": wins / total if total > 0 else None,
            }
        )
    return pd.DataFrame(rows, columns=[feature.name for feature in FEATURES])


def retrain(session: Session, organization_id: int) -> WinProbabilityModel:
    """Train the organization's model on its closed deals and store it (replacing the previous one).
    The earliest 80 % of closed deals are first held against the latest 20 % to record honest AUC and
    Brier figures; the stored model is then fitted on all of them."""
    deals = list(
        session.scalars(
            within_organization(organization_id, Opportunity)
            .where(Opportunity.stage.in_([Stage.WON, Stage.LOST]))
            .order_by(Opportunity.closed_at, Opportunity.id)
        )
    )
    frame = features(session, organization_id, deals)
    won = pd.Series([deal.stage == Stage.WON for deal in deals])
    metrics: dict[str, Any] = {}
    cut = int(len(deals) * 0.8)
    held = won.iloc[cut:]
    if cut >= 40 and held.nunique() == 2 and won.iloc[:cut].nunique() == 2:
        try:
            early = train(frame.iloc[:cut], won.iloc[:cut], FEATURES)
            metrics = {"holdout": len(held), **scores(early.predict(frame.iloc[cut:]), held)}
        except ValidationFailed:  # too few of one outcome early on: no holdout figures, still a model
            metrics = {}
    model = train(frame, won, FEATURES)
    stored = session.scalar(within_organization(organization_id, WinProbabilityModel))
    if stored is None:
        stored = WinProbabilityModel(organization_id=organization_id, closed_deals=0, won_deals=0, blob=b"")
        session.add(stored)
    stored.trained_at = utcnow()
    stored.closed_deals = len(deals)
    stored.won_deals = int(won.sum())
    stored.blob = model.dumps()
    stored.metrics = metrics
    session.flush()
    return stored


def win_probability(session: Session, actor: Actor, opportunity_id: int, *, locale: str = "en") -> dict[str, Any]:
    """The opportunity's win probability and top reasons, as ``actor`` may see them (the opportunity
    must be visible to them; a reason resting on a field their masks hide is left out). An open deal
    past its expected close date has its probability lowered by :mod:`past_due`, and that comes first
    among the reasons."""
    deal = records.get(session, actor, OPPORTUNITIES, opportunity_id)
    stored = session.scalar(within_organization(actor.organization_id, WinProbabilityModel))
    closed = Stage(deal.stage).is_closed
    reasons: list[Reason] = []
    if closed:
        probability = 1.0 if deal.stage == Stage.WON else 0.0
    elif stored is None:
        # the stage's win rate among the closed deals that sat in it as long as this one has
        sat = (utcnow() - as_utc(deal.stage_changed_at)).total_seconds() / dwell.SECONDS_PER_DAY
        probability = dwell.stays(session, actor.organization_id)[Stage(deal.stage)].rate(max(sat, 0.0))
    else:
        model = WinModel.loads(stored.blob)
        frame = features(session, actor.organization_id, [deal])
        hidden = set(records.masked(session, actor, "opportunity"))
        hidden |= {f"account.{name}" for name in records.masked(session, actor, "account")}
        probability, reasons = float(model.predict(frame)[0]), model.reasons(frame, hidden_fields=hidden)[0]
    shown = [reason.as_dict(locale) for reason in reasons]
    late = None
    if not closed:
        history = past_due.lateness(session, actor.organization_id)
        late = past_due.adjust(probability, deal.expected_close_date, utcnow().date(), history)
        if late is not None:
            probability = late.probability
            shown.insert(0, late.reason(locale))
    about: dict[str, Any] = {"kind": "stage_win_rate"}
    if stored is not None:
        about = {
            "kind": "calibrated_lightgbm",
            "trained_at": as_utc(stored.trained_at).isoformat(),
            "closed_deals": stored.closed_deals,
            "won_deals": stored.won_deals,
            **{key: stored.metrics[key] for key in ("auc", "brier", "holdout") if key in stored.metrics},
        }
    return {
        "opportunity_id": deal.id,
        "probability": round(probability, 4),
        "closed": closed,
        "reasons": shown,
        "model": about,
        # how the probability was lowered because the expected close date has passed (else null)
        "past_due": None if late is None else late.as_dict(),
    }
