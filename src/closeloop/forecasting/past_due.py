"""The past-due adjustment of a win probability (issue #5 item 1): an open deal whose expected close
date has passed is less likely to be won than the model (or its stage's win rate) says, because
neither knows how late it is. How much less is learned from the organization's own closed deals.

For an open deal ``N`` days past its expected close date, the **cohort** is the closed deals (won or
lost, with an expected close date) that closed at least ``N`` days after their expected date — the
deals that were once as late as this one. When fewer than ``MIN_COHORT`` closed that late, the
threshold drops to the largest number of days that still has ``MIN_COHORT`` deals (the evidence
runs out; the adjustment does not grow beyond it). The cohort's win rate, smoothed toward the win
rate of the **reference** with ``PRIOR_DEALS`` pseudo-deals, against the reference's win rate gives an
odds ratio; the deal's odds are multiplied by it. The reference is the closed deals that were still
open on their expected close date (closed on it or later): every past-due deal is one of those, and
deals lost early — long before their date — say nothing about lateness. The adjustment only lowers:
a cohort that wins more often than the reference leaves the probability as it is (a late deal is
not rewarded).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.clock import as_utc
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.scope import tenant_clause

#: a cohort needs at least this many closed deals to speak for a lateness
MIN_COHORT = 10
#: pseudo-deals at the overall win rate added to a cohort (shrinks small cohorts toward no change)
PRIOR_DEALS = 5
#: probabilities are kept inside (EDGE, 1 − EDGE) before taking odds
EDGE = 1e-4


@dataclass(frozen=True)
class Lateness:
    """The organization's closed deals by how late they closed: sorted days (closed − expected) and
    whether each was won, aligned."""

    days: tuple[int, ...]
    won: tuple[bool, ...]

    @property
    def base_rate(self) -> float | None:
        """The win rate of the deals still open on their expected close date (closed on it or later)."""
        due = self.won[bisect_left(self.days, 0) :]
        return sum(due) / len(due) if due else None


@dataclass(frozen=True)
class Adjustment:
    """One open deal's adjustment: how late it is, the cohort it was compared with and the result."""

    days_past_due: int
    #: the cohort: closed deals that closed at least this many days after their expected date
    cohort_days: int
    cohort_deals: int
    cohort_won: int
    base_rate: float
    odds_ratio: float
    model_probability: float
    probability: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "days_past_due": self.days_past_due,
            "model_probability": round(self.model_probability, 4),
            "odds_ratio": round(self.odds_ratio, 4),
            "cohort": {
                "min_days_late": self.cohort_days,
                "closed_deals": self.cohort_deals,
                "won_deals": self.cohort_won,
                "win_rate": round(self.cohort_won / self.cohort_deals, 4) if self.cohort_deals else None,
            },
            "base_win_rate": round(self.base_rate, 4),
        }

    def reason(self, locale: str) -> dict[str, Any]:
        """The plain-words reason shown with the probability (the reasons' shape; ``direction`` is
        ``flat`` when the late cohort did not win less often, so nothing was lowered)."""
        weight = math.log(self.odds_ratio) if self.odds_ratio > 0 else 0.0
        before, after = f"{self.model_probability:.0%}", f"{self.probability:.0%}"
        # "lowered" only when the percentage shown moves: 82 % "lowered" to 82 % reads as a contradiction
        lowered = weight < 0 and before != after
        rate = self.cohort_won / self.cohort_deals if self.cohort_deals else 0.0
        if locale.startswith("zh"):
            effect = f"赢单可能从 {before} 降至 {after}" if lowered else "赢单可能基本不变"
            text = (
                f"预计成交日期已过 {self.days_past_due} 天：过期 {self.cohort_days} 天以上才结单的"
                f" {self.cohort_deals} 个商机中 {rate:.0%} 赢单（到期时仍未结单的商机 {self.base_rate:.0%}），" + effect
            )
        else:
            effect = f"lowers the chance from {before} to {after}" if lowered else "the chance is about the same"
            text = (
                f"Expected close passed {self.days_past_due} days ago: of {self.cohort_deals} deals that closed "
                f"{self.cohort_days}+ days late, {rate:.0%} were won (deals still open on their date: "
                f"{self.base_rate:.0%}) — " + effect
            )
        return {
            "feature": "days_past_due",
            "value": str(self.days_past_due),
            "direction": "down" if lowered else "flat",
            "weight": round(weight, 4),
            "text": text,
        }


def lateness(session: Session, organization_id: int, *, closed_before: datetime | None = None) -> Lateness:
    """How late (in days, negative = early) each of the organization's closed deals closed (of those
    closed before ``closed_before`` when given)."""
    query = select(Opportunity.closed_at, Opportunity.expected_close_date, Opportunity.stage).where(
        tenant_clause(organization_id, Opportunity),
        Opportunity.stage.in_([Stage.WON.value, Stage.LOST.value]),
        Opportunity.closed_at.is_not(None),
        Opportunity.expected_close_date.is_not(None),
    )
    if closed_before is not None:
        query = query.where(Opportunity.closed_at < closed_before)
    rows = session.execute(query).all()
    pairs = sorted(
        ((as_utc(closed).date() - expected).days, str(stage) == Stage.WON.value)
        for closed, expected, stage in rows
        if closed is not None and expected is not None
    )
    return Lateness(days=tuple(day for day, _ in pairs), won=tuple(won for _, won in pairs))


def _odds(probability: float) -> float:
    clipped = min(max(probability, EDGE), 1 - EDGE)
    return clipped / (1 - clipped)


def adjust(probability: float, expected_close: date | None, today: date, history: Lateness) -> Adjustment | None:
    """The adjusted probability of an open deal, or ``None`` when it is not past due (or the
    organization has no closed deal with an expected close date to learn from)."""
    if expected_close is None or expected_close >= today or history.base_rate is None:
        return None
    late = (today - expected_close).days
    base = history.base_rate
    count = len(history.days)
    # the cohort: deals that closed at least `threshold` days late; lower it while it is too small
    threshold = late
    start = bisect_left(history.days, threshold)
    if count - start < MIN_COHORT:
        start = max(count - MIN_COHORT, 0)
        threshold = min(late, max(history.days[start], 1))
        start = bisect_left(history.days, threshold)
    cohort = history.won[start:]
    won = sum(cohort)
    rate = (won + PRIOR_DEALS * base) / (len(cohort) + PRIOR_DEALS)
    ratio = min(1.0, _odds(rate) / _odds(base))
    odds = _odds(probability) * ratio
    adjusted = probability if ratio >= 1.0 else min(probability, odds / (1 + odds))
    return Adjustment(
        days_past_due=late,
        cohort_days=threshold,
        cohort_deals=len(cohort),
        cohort_won=won,
        base_rate=base,
        odds_ratio=ratio,
        model_probability=probability,
        probability=adjusted,
    )
