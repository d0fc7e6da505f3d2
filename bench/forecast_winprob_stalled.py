"""Win probability of open deals by time in stage (issue #5, eleventh session): is the trained model
over-confident for deals that sit in a stage and never close?

    nice -n 10 .venv/bin/python bench/forecast_winprob_stalled.py DEMO_DATABASE_URL ORGANIZATION_ID

For the first of each of the last six months before the latest close, every deal open at the end of
that day (closed since *or still open now* — the stalled deals the closed-deal history never sees),
as it stood then, is scored by a model trained on the deals closed before the day (the product's
training rows, :func:`closeloop.forecasting.opportunities.training_points`), and by the no-model
survival estimate learned from the stays up to that day (:mod:`closeloop.forecasting.survival`).
The outcome is *won within a year of the day, by the data's end* — what the bookings forecast
needs; a deal still open now counts as not won. Printed by stage and days in stage: mean predicted
(model; model × the chance of a decision within the year for its stage and days, the adjustment the
product applies; survival) against the share won; and AUC / Brier over all deals × days.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.forecast_winprob_open import MODES, fit  # noqa: E402
from closeloop.core.clock import as_utc  # noqa: E402
from closeloop.crm.enums import Stage  # noqa: E402
from closeloop.crm.opportunities.models import Opportunity  # noqa: E402
from closeloop.db.scope import within_organization  # noqa: E402
from closeloop.db.session import connect  # noqa: E402
from closeloop.forecasting import opportunities as op  # noqa: E402
from closeloop.forecasting import survival  # noqa: E402
from closeloop.forecasting.bookings import open_deals_then  # noqa: E402
from closeloop.forecasting.winprob import scores  # noqa: E402

BUCKETS = ((0, 15, "0–14"), (15, 30, "15–29"), (30, 60, "30–59"), (60, 10**6, "60+"))


def main() -> None:
    url, organization_id = sys.argv[1], int(sys.argv[2])
    database = connect(url)
    started, cpu = time.perf_counter(), time.process_time()
    frames = []
    with database.reading(None, system=True) as session:
        deals = list(
            session.scalars(
                within_organization(organization_id, Opportunity)
                .where(Opportunity.stage.in_([Stage.WON, Stage.LOST]))
                .order_by(Opportunity.closed_at, Opportunity.id)
            )
        )
        last = max(as_utc(d.closed_at) for d in deals if d.closed_at is not None)
        day = datetime(last.year, last.month, 1, tzinfo=UTC)
        days = []
        for _ in range(6):
            day = (day - timedelta(days=1)).replace(day=1)
            days.append(day)
        for day in sorted(days):
            end = day + timedelta(days=1)
            before = [d for d in deals if d.closed_at is not None and as_utc(d.closed_at) < day]
            model = fit(session, organization_id, before, MODES[1])
            then = open_deals_then(session, organization_id, day.date())
            records = {
                deal.id: deal
                for deal in session.scalars(
                    within_organization(organization_id, Opportunity).where(
                        Opportunity.id.in_([deal.id for deal in then])
                    )
                )
            }
            points = [op.Point(records[deal.id], end, deal.stage, deal.stage_since) for deal in then]
            frame = op.rows(session, organization_id, points)
            sat = [
                max((end - deal.stage_since).total_seconds() / survival.SECONDS_PER_DAY, 0.0)
                if deal.stage_since
                else 0.0
                for deal in then
            ]
            history = survival.stays(session, organization_id, cut=end)
            stages = [deal.stage for deal in then]
            p_model = np.asarray(model.predict(frame), dtype=float)
            decided = np.asarray(survival.decided(history, stages, sat))
            closes = [records[deal.id].closed_at for deal in then]
            won = [
                records[deal.id].stage == Stage.WON
                and closed is not None
                and as_utc(closed) < end + timedelta(days=365)
                for deal, closed in zip(then, closes, strict=True)
            ]
            frames.append(
                pd.DataFrame(
                    {
                        "day": day.date(),
                        "stage": stages,
                        "sat": sat,
                        "model": p_model,
                        "adjusted": p_model * decided,
                        "survival": survival.rates(history, stages, sat),
                        "won": won,
                        "open_now": [not Stage(records[deal.id].stage).is_closed for deal in then],
                    }
                )
            )
    both = pd.concat(frames)
    print(f"#### deals open on {', '.join(str(d.date()) for d in sorted(days))}: {len(both):,} deals × days")
    print()
    print("| probabilities | AUC | Brier | predicted wins | won |")
    print("|---|---:|---:|---:|---:|")
    for name in ("model", "adjusted", "survival"):
        measured = scores(both[name], both["won"])
        print(
            f"| {name} | {measured['auc']:.3f} | {measured['brier']:.4f} | {both[name].sum():,.1f} | "
            f"{int(both['won'].sum()):,} |"
        )
    print()
    print("| stage | days in stage | deals × days | still open now | won | model | model × decided | survival |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    order = [stage.value for stage in Stage]
    for stage in sorted(set(both["stage"]), key=order.index):
        for low, high, label in BUCKETS:
            part = both[(both["stage"] == stage) & (both["sat"] >= low) & (both["sat"] < high)]
            if not len(part):
                continue
            print(
                f"| {stage} | {label} | {len(part):,} | {part['open_now'].mean():.0%} | {part['won'].mean():.1%} | "
                f"{part['model'].mean():.1%} | {part['adjusted'].mean():.1%} | {part['survival'].mean():.1%} |"
            )
    load = os.getloadavg()
    print()
    print(
        f"wall {time.perf_counter() - started:.1f} s, CPU {time.process_time() - cpu:.1f} s, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


if __name__ == "__main__":
    main()
