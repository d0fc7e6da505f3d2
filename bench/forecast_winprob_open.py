"""Win probability (FC-1, issue #5) on an organization's own deals: a model learned from closed deals
as they stood when they closed (the rows before the eighth session) against one learned from them as
they stood while open (:func:`closeloop.forecasting.opportunities.training_points`), in one process.

    closeloop migrate && closeloop demo   # into a scratch database
    CLOSELOOP_DATABASE_URL=sqlite:////tmp/d.db nice -n 10 .venv/bin/python bench/forecast_winprob_open.py [ORG_ID]

Two measurements per way of training:

* **holdout** — the earliest 80 % of closed deals by close date train, the latest 20 % test (no deal
  on both sides), scored on the test deals' rows *of the same kind* (what ``retrain`` records) and on
  their rows while open (what is scored in production; each deal weighs one);
* **as of past days** — for the first of each of the last six months, a model trained on the deals
  closed before that day scores the deals open on it, as they stood then (stage, days in it, age,
  activities by then), against how they ended (deals still open today are left out): per stage,
  mean predicted against the share won.

Prints CPU and wall time and the load average.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy.orm import Session  # noqa: E402

from closeloop.config import settings  # noqa: E402
from closeloop.core.clock import as_utc  # noqa: E402
from closeloop.crm.enums import Stage  # noqa: E402
from closeloop.crm.opportunities.models import Opportunity  # noqa: E402
from closeloop.db.scope import within_organization  # noqa: E402
from closeloop.db.session import connect  # noqa: E402
from closeloop.forecasting import dwell  # noqa: E402
from closeloop.forecasting import opportunities as op  # noqa: E402
from closeloop.forecasting.winprob import WinModel, calibration_table, scores, train  # noqa: E402

MODES = ("at close (before)", "while open (after)")
#: the win probability before any model is trained (forecasting/dwell.py), for comparison
BASELINE = "stage × days in stage rate (no model)"


def fit(session: Session, organization_id: int, deals: list[Opportunity], mode: str) -> WinModel:
    won_of = {deal.id: deal.stage == Stage.WON for deal in deals}
    if mode == MODES[0]:
        return train(op.features(session, organization_id, deals), [won_of[d.id] for d in deals], op.FEATURES)
    weighted = op.training_points(session, organization_id, deals)
    frame = op.rows(session, organization_id, [point for point, _ in weighted])
    return train(
        frame,
        [won_of[point.deal.id] for point, _ in weighted],
        op.FEATURES,
        weights=[weight for _, weight in weighted],
        groups=[point.deal.id for point, _ in weighted],
    )


def open_rows(session: Session, organization_id: int, deals: list[Opportunity]) -> tuple[pd.DataFrame, Any, Any]:
    weighted = op.training_points(session, organization_id, deals)
    frame = op.rows(session, organization_id, [point for point, _ in weighted])
    won = np.array([point.deal.stage == Stage.WON for point, _ in weighted])
    return frame, won, np.array([weight for _, weight in weighted])


def as_of_points(session: Session, organization_id: int, deals: list[Opportunity], day: datetime) -> list[op.Point]:
    """The closed deals that were open at ``day``, as they stood then (stage from their history)."""
    history = op.stage_history(session, organization_id, [deal.id for deal in deals])
    points = []
    for deal in deals:
        if not (as_utc(deal.opened_at) <= day < as_utc(deal.closed_at or day)):
            continue
        for stay in op.stays(deal, history.get(deal.id, [])):
            if stay.entered <= day < stay.left:
                points.append(op.Point(deal, day, stay.stage.value, stay.entered))
                break
    return points


def main() -> None:
    organization_id = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    database = connect(settings.effective_database_url)
    started, cpu = time.perf_counter(), time.process_time()
    with database.reading(None, system=True) as session:
        deals = list(
            session.scalars(
                within_organization(organization_id, Opportunity)
                .where(Opportunity.stage.in_([Stage.WON, Stage.LOST]))
                .order_by(Opportunity.closed_at, Opportunity.id)
            )
        )
        cut = int(len(deals) * 0.8)
        early, late = deals[:cut], deals[cut:]
        late_frame, late_won, late_weight = open_rows(session, organization_id, late)
        print(f"#### {len(deals):,} closed deals: {cut:,} train, {len(late):,} test (by close date)")
        print()
        print("| trained on rows | holdout AUC, rows of its kind | Brier | AUC, test deals while open | Brier |")
        print("|---|---:|---:|---:|---:|")
        for mode in MODES:
            model = fit(session, organization_id, early, mode)
            if mode == MODES[0]:
                own = scores(
                    model.predict(op.features(session, organization_id, late)), [d.stage == Stage.WON for d in late]
                )
            else:
                own = scores(model.predict(late_frame), late_won, weights=late_weight)
            served = scores(model.predict(late_frame), late_won, weights=late_weight)
            print(f"| {mode} | {own['auc']:.3f} | {own['brier']:.4f} | {served['auc']:.3f} | {served['brier']:.4f} |")
        print()
        last = max(as_utc(d.closed_at) for d in deals if d.closed_at)
        first_of_month = datetime(last.year, last.month, 1, tzinfo=UTC)
        days = []
        for _ in range(6):
            days.append(first_of_month)
            first_of_month = (first_of_month - timedelta(days=1)).replace(day=1)
        results: dict[str, list[pd.DataFrame]] = {mode: [] for mode in (*MODES, BASELINE)}
        for day in sorted(days):
            before = [deal for deal in deals if deal.closed_at and as_utc(deal.closed_at) < day]
            points = as_of_points(session, organization_id, deals, day)
            if not points:
                continue
            frame = op.rows(session, organization_id, points)
            truth = np.array([point.deal.stage == Stage.WON for point in points])
            for mode in MODES:
                model = fit(session, organization_id, before, mode)
                results[mode].append(
                    pd.DataFrame({"day": day.date(), "stage": frame["stage"], "p": model.predict(frame), "won": truth})
                )
            # the no-model path: the stage's win rate among the deals closed before that sat in it as long
            rates = dwell.stays(session, organization_id, closed_before=day)
            stage_rate = [
                rates[Stage(str(point.stage))].rate(max((day - as_utc(point.since)).total_seconds() / 86400.0, 0.0))
                if point.since is not None
                else np.nan
                for point in points
            ]
            results[BASELINE].append(
                pd.DataFrame({"day": day.date(), "stage": frame["stage"], "p": stage_rate, "won": truth})
            )
        listed = ", ".join(str(d.date()) for d in sorted(days))
        print(f"#### deals open on {listed}, as they stood then, by a model trained on the deals closed before")
        print()
        print("| trained on rows | deals × days | AUC | Brier | predicted (sum) | won |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode in (BASELINE, *MODES):
            both = pd.concat(results[mode])
            measured = scores(both["p"], both["won"])
            print(
                f"| {mode} | {len(both):,} | {measured['auc']:.3f} | {measured['brier']:.4f} | "
                f"{both['p'].sum():,.1f} | {int(both['won'].sum()):,} |"
            )
        print()
        print("| stage | deals × days | won | predicted, " + " | predicted, ".join((BASELINE, *MODES)) + " |")
        print("|---|---:|---:|---:|---:|---:|")
        tables = {mode: pd.concat(results[mode]) for mode in (BASELINE, *MODES)}
        for stage, group in tables[MODES[1]].groupby("stage"):
            means = [tables[mode][tables[mode]["stage"] == stage]["p"].mean() for mode in (BASELINE, *MODES)]
            print(
                f"| {stage} | {len(group):,} | {group['won'].mean():.1%} | "
                + " | ".join(f"{m:.1%}" for m in means)
                + " |"
            )
        for mode in MODES:
            print()
            print(f"calibration, {mode}:")
            print()
            print("| predicted | deals × days | mean predicted | observed |")
            print("|---|---:|---:|---:|")
            for row in calibration_table(tables[mode]["p"], tables[mode]["won"]).itertuples():
                print(f"| {row.bin} | {row.deals} | {row.predicted:.1%} | {row.observed:.1%} |")
    load = os.getloadavg()
    print()
    print(
        f"wall {time.perf_counter() - started:.1f} s, CPU {time.process_time() - cpu:.1f} s, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


if __name__ == "__main__":
    main()
