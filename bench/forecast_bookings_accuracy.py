"""Bookings-forecast accuracy on demo histories: each finished month against the snapshot of its first day.

    nice -n 10 .venv/bin/python bench/forecast_bookings_accuracy.py [--seeds 20261101 1 2 3]
        [--as-of 2026-11-27] [--months 6] [--simulations 500] [--databases DIR]

For each seed a demo history is seeded into a fresh, migrated SQLite database (kept in ``--databases``
and reused by a later run with the same seed and day), then, for the first day of each of the last
``--months`` finished months, a past snapshot is computed exactly as ``closeloop demo`` backfills it
(:func:`closeloop.forecasting.bookings.take_snapshot` with a past ``as_of``: the deals open then as
they stood, rates, timing and run-rate from the deals closed by then) inside a transaction that is
rolled back. Its month row (total) is compared with what the seller booked in that month.

Printed per seed and over all months: mean error (booked − expected) ÷ expected, mean |error|, months
inside the 80 % interval; the same for each of the ``LEADS`` months after the snapshot's (those
finished); and, over all snapshots, the current month's open expected value by the
stage the deals stood in against what those deals booked in the month (where the error comes from).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.databases import fresh_sqlite  # noqa: E402
from closeloop.core.clock import as_utc  # noqa: E402
from closeloop.crm.enums import Stage  # noqa: E402
from closeloop.crm.opportunities.models import Opportunity  # noqa: E402
from closeloop.db.scope import tenant_clause  # noqa: E402
from closeloop.db.session import connect  # noqa: E402
from closeloop.forecasting import bookings  # noqa: E402
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot, BookingsSnapshotDeal  # noqa: E402
from closeloop.forecasting.simulation import add_months  # noqa: E402

#: months after the snapshot's own whose forecast is compared too (those finished by ``--as-of``)
LEADS = 5


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def demo_database(directory: Path, seed: int, as_of: date) -> tuple[str, int]:
    """A seeded demo database for ``seed`` as of ``as_of`` (built once, then reused)."""
    from closeloop.demo.seed import seed_demo

    index = directory / f"demo-{seed}-{as_of.isoformat()}.json"
    if index.exists():
        known = json.loads(index.read_text())
        return str(known["url"]), int(known["organization_id"])
    url = fresh_sqlite(directory)
    database = connect(url)
    result = seed_demo(database, seed=seed, anchor=datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC))
    database.dispose()
    index.write_text(json.dumps({"url": url, "organization_id": result.organization_id}))
    return url, result.organization_id


def _simulated(snapshot: BookingsSnapshot, row: BookingsForecastRow) -> tuple[float, float]:
    """The row's interval as the simulation gave it (before calibration)."""
    stored = ((snapshot.details or {}).get("interval") or {}).get("simulated", {}).get(f"month:{row.period}")
    return (float(stored[0]), float(stored[1])) if stored else (float(row.low), float(row.high))


def measure(
    url: str, organization_id: int, as_of: date, months: int, simulations: int, history: int
) -> list[dict[str, object]]:
    database = connect(url)
    first = as_of.replace(day=1)
    days = [add_months(first, -back) for back in range(months, 0, -1)]
    results = []
    with database.unit_of_work(None, system=True) as session:
        # the snapshots a nightly task would have kept before the measured ones (what calibration
        # learns from), oldest first so that each sees the earlier ones; rolled back at the end
        for back in range(months + history, months, -1):
            bookings.take_snapshot(session, organization_id, simulations=simulations, as_of=add_months(first, -back))
        won = [
            (as_utc(closed).date(), float(amount), opportunity_id)
            for closed, amount, opportunity_id in session.execute(
                select(Opportunity.closed_at, Opportunity.amount, Opportunity.id).where(
                    tenant_clause(organization_id, Opportunity),
                    Opportunity.stage == Stage.WON.value,
                    Opportunity.amount.is_not(None),
                )
            )
            if closed is not None and amount is not None
        ]
        for day in days:
            end = add_months(day, 1)
            snapshot = bookings.take_snapshot(session, organization_id, simulations=simulations, as_of=day)
            row = session.scalar(
                select(BookingsForecastRow).where(
                    BookingsForecastRow.snapshot_id == snapshot.id,
                    BookingsForecastRow.granularity == "month",
                    BookingsForecastRow.period_start == day,
                    BookingsForecastRow.dimension == "total",
                )
            )
            assert row is not None
            booked_by_deal = {deal: amount for closed, amount, deal in won if day <= closed < end}
            won_deals = {deal for _, _, deal in won}
            by_stage: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
            shares = bookings.snapshot_shares(session, snapshot, day)
            for deal in session.scalars(
                select(BookingsSnapshotDeal).where(BookingsSnapshotDeal.snapshot_id == snapshot.id)
            ):
                share = shares.get(deal.opportunity_id, 0.0)
                by_stage[deal.stage][0] += float(deal.amount) * deal.probability * share
                by_stage[deal.stage][1] += float(deal.amount) * share * (deal.opportunity_id in won_deals)
                by_stage[deal.stage][2] += booked_by_deal.get(deal.opportunity_id, 0.0)
            booked = sum(booked_by_deal.values())
            expected, low, high = float(row.expected), float(row.low), float(row.high)
            raw_low, raw_high = _simulated(snapshot, row)
            later = []
            for lead in range(1, LEADS + 1):
                start = add_months(day, lead)
                if add_months(start, 1) > first:
                    continue
                ahead = session.scalar(
                    select(BookingsForecastRow).where(
                        BookingsForecastRow.snapshot_id == snapshot.id,
                        BookingsForecastRow.granularity == "month",
                        BookingsForecastRow.period_start == start,
                        BookingsForecastRow.dimension == "total",
                    )
                )
                if ahead is None:  # beyond the snapshot's horizon (this month to the end of next quarter)
                    continue
                landed = sum(amount for closed, amount, _ in won if start <= closed < add_months(start, 1))
                ahead_low, ahead_high = _simulated(snapshot, ahead)
                middle = float(ahead.low + ahead.high) / 2
                later.append(
                    (
                        lead,
                        (landed - float(ahead.expected)) / float(ahead.expected),
                        ahead.low <= landed <= ahead.high,
                        ahead_low <= landed <= ahead_high,
                        float(ahead.high - ahead.low) / float(ahead.expected),
                        (ahead_high - ahead_low) / float(ahead.expected),
                        (landed - middle) / middle,
                    )
                )
            results.append(
                {
                    "month": day.isoformat()[:7],
                    "expected": expected,
                    "low": low,
                    "high": high,
                    "booked": booked,
                    "error": (booked - expected) / expected,
                    "inside": low <= booked <= high,
                    "raw_low": raw_low,
                    "raw_high": raw_high,
                    "raw_inside": raw_low <= booked <= raw_high,
                    "calibration": [
                        item
                        for item in ((snapshot.details or {}).get("interval") or {}).get("leads", [])
                        if item["granularity"] == "month"
                    ],
                    "by_stage": dict(by_stage),
                    "later": later,
                }
            )
        session.rollback()
    database.dispose()
    return results


def _figures(rows: list[tuple[float, bool, bool, float, float, float]]) -> str:
    """error, inside (calibrated), inside (simulated), width ÷ expected (calibrated, simulated), error
    against the calibrated interval's midpoint."""
    errors = np.array([row[0] for row in rows])
    middle = np.array([row[5] for row in rows])
    calibrated, simulated = sum(row[1] for row in rows), sum(row[2] for row in rows)
    return (
        f"{len(rows)} | {errors.mean():+.1%} | {np.abs(errors).mean():.1%} | "
        f"{simulated} / {len(rows)} ({simulated / len(rows):.0%}) | {calibrated} / {len(rows)} "
        f"({calibrated / len(rows):.0%}) | {np.mean([row[4] for row in rows]):.0%} | "
        f"{np.mean([row[3] for row in rows]):.0%} | {middle.mean():+.1%} | {np.abs(middle).mean():.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[20261101, 1, 2, 3])
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 27))
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument(
        "--history",
        type=int,
        default=12,
        help="monthly snapshots kept before the measured ones (what the interval is calibrated on)",
    )
    parser.add_argument("--simulations", type=int, default=500)
    parser.add_argument(
        "--settled-days", type=int, default=None, help="override landing.SETTLED_DAYS (to measure the choice)"
    )
    parser.add_argument("--databases", type=Path, default=Path(tempfile.gettempdir()) / "closeloop-bench-accuracy")
    arguments = parser.parse_args()
    if arguments.as_of > datetime.now(UTC).date() + timedelta(days=1):
        raise SystemExit("--as-of lies in the future")
    arguments.databases.mkdir(parents=True, exist_ok=True)
    if arguments.settled_days is not None:
        from closeloop.forecasting import landing

        landing.SETTLED_DAYS = arguments.settled_days
    every: list[dict[str, object]] = []
    stages: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    print("| seed | mean error | mean \\|error\\| | inside 80 %, simulated | calibrated | CPU s (snapshots) |")
    print("|---|---:|---:|---:|---:|---:|")
    for seed in arguments.seeds:
        url, organization_id = demo_database(arguments.databases, seed, arguments.as_of)
        started = _cpu()
        results = measure(
            url, organization_id, arguments.as_of, arguments.months, arguments.simulations, arguments.history
        )
        spent = _cpu() - started
        errors = np.array([float(str(item["error"])) for item in results])
        inside = sum(bool(item["inside"]) for item in results)
        raw = sum(bool(item["raw_inside"]) for item in results)
        print(
            f"| {seed} | {errors.mean():+.1%} | {np.abs(errors).mean():.1%} | {raw} / {len(results)} | "
            f"{inside} / {len(results)} | {spent:.1f} |"
        )
        for item in results:
            for stage, figures in item["by_stage"].items():  # type: ignore[attr-defined]
                for index, value in enumerate(figures):
                    stages[stage][index] += value
        every.extend(results)
    print()
    print(
        "| months after the snapshot's own | rows | mean error | mean \\|error\\| | inside 80 %, simulated "
        "| inside 80 %, calibrated | mean width ÷ expected, simulated | calibrated "
        "| error against the calibrated midpoint: mean | mean \\|·\\| |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_lead: dict[int, list[tuple[float, bool, bool, float, float, float]]] = defaultdict(list)
    for item in every:
        expected = float(str(item["expected"]))
        middle = (float(str(item["low"])) + float(str(item["high"]))) / 2
        by_lead[0].append(
            (
                float(str(item["error"])),
                bool(item["inside"]),
                bool(item["raw_inside"]),
                (float(str(item["high"])) - float(str(item["low"]))) / expected,
                (float(str(item["raw_high"])) - float(str(item["raw_low"]))) / expected,
                (float(str(item["booked"])) - middle) / middle,
            )
        )
        for lead, error, inside_ahead, raw_ahead, width, raw_width, off in item["later"]:  # type: ignore[attr-defined]
            by_lead[lead].append((error, inside_ahead, raw_ahead, width, raw_width, off))
    for lead in sorted(by_lead):
        print(f"| {lead} | {_figures(by_lead[lead])} |")
    print(f"| all | {_figures([row for rows in by_lead.values() for row in rows])} |")
    print()
    print(
        "| seed / month | expected | 80 % simulated | 80 % calibrated | booked | error "
        "| inside (sim / cal) | pairs by lead |"
    )
    print("|---|---:|---|---|---:|---:|---|---|")
    for seed_index, seed in enumerate(arguments.seeds):
        for item in every[seed_index * arguments.months : (seed_index + 1) * arguments.months]:
            leads = " ".join(
                f"{entry['lead']}:{entry['pairs']}{'' if entry['applied'] else '×'}"
                for entry in item["calibration"]  # type: ignore[attr-defined]
            )
            print(
                f"| {seed} {item['month']} | {float(str(item['expected'])) / 1e6:.1f} | "
                f"{float(str(item['raw_low'])) / 1e6:.1f}–{float(str(item['raw_high'])) / 1e6:.1f} | "
                f"{float(str(item['low'])) / 1e6:.1f}–{float(str(item['high'])) / 1e6:.1f} | "
                f"{float(str(item['booked'])) / 1e6:.1f} | {float(str(item['error'])):+.1%} | "
                f"{'yes' if item['raw_inside'] else 'no'} / {'yes' if item['inside'] else 'no'} | {leads} |"
            )
    print()
    print(
        "| stage (as the deal stood) | open expected in its first month, ¥ M "
        "| the same with each deal's outcome known (timing alone) | booked by those deals, ¥ M |"
    )
    print("|---|---:|---:|---:|")
    order = [stage.value for stage in Stage]
    for stage in sorted(stages, key=lambda name: order.index(name) if name in order else len(order)):
        expected, timed, booked = stages[stage]
        print(f"| {stage} | {expected / 1e6:.1f} | {timed / 1e6:.1f} | {booked / 1e6:.1f} |")


if __name__ == "__main__":
    main()
