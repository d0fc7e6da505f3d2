"""Bookings-forecast snapshot benchmark: how long the nightly snapshot of one large organization takes.

    nice -n 10 .venv/bin/python bench/forecast_bookings.py [--open 20000] [--won 50000] [--simulations 2000]

A fresh, migrated SQLite database gets one organization with 8 regions, 100 reps, 5 product lines,
``--open`` open deals (expected to close over the next five months, a fifth of them overdue) and
``--won`` won deals over the last two years (the slippage and run-rate history). Without a trained
model, the stage win rates give the probabilities (the model's prediction adds a feature read per
deal). Printed: wall and CPU seconds of ``take_snapshot`` (reads, simulation, the rows written), the
rows written, and the expected value with its 80 % interval of the current quarter.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.databases import fresh_sqlite  # noqa: E402
from closeloop.core.clock import utcnow  # noqa: E402
from closeloop.crm.accounts.models import Account  # noqa: E402
from closeloop.crm.enums import OPEN_STAGES, Stage  # noqa: E402
from closeloop.crm.opportunities.models import Opportunity  # noqa: E402
from closeloop.crm.products.models import Product, ProductLine  # noqa: E402
from closeloop.db.session import Database, connect  # noqa: E402
from closeloop.forecasting.bookings import take_snapshot  # noqa: E402
from closeloop.forecasting.models import BookingsForecastRow  # noqa: E402
from closeloop.governance.permissions import Role  # noqa: E402
from closeloop.org import service as org_service  # noqa: E402


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def build(database: Database, open_deals: int, won: int, seed: int = 11) -> int:
    rng = random.Random(seed)
    now = utcnow()
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(session, name="Bookings bench", slug=f"bookings-{seed}")
        system = org_service.system_actor(organization.id)
        regions = [org_service.ensure_region(session, system, name=f"区域{n}").id for n in range(8)]
        reps = [
            org_service.create_user(
                session,
                system,
                data=org_service.NewUser(
                    username=f"bookings-rep-{organization.id}-{n}",
                    display_name=f"代表{n}",
                    role=Role.REP,
                    region_id=regions[n % 8],
                ),
            ).id
            for n in range(100)
        ]
        lines = []
        for n in range(5):
            line = ProductLine(organization_id=organization.id, name=f"产品线{n}")
            session.add(line)
            session.flush()
            lines.append(line.id)
        products = []
        for n in range(20):
            product = Product(organization_id=organization.id, name=f"产品{n}", product_line_id=lines[n % 5])
            session.add(product)
            session.flush()
            products.append(product.id)
        session.execute(
            insert(Account),
            [
                {"organization_id": organization.id, "name": f"客户{n}", "region_id": regions[n % 8],
                 "owner_id": reps[n % 100]}
                for n in range(5_000)
            ],
        )  # fmt: skip
        accounts = list(session.scalars(select(Account.id).where(Account.organization_id == organization.id)))
        organization_id = organization.id

    def deal(n: int, stage: Stage) -> dict[str, Any]:
        if stage == Stage.WON:
            closed = now - timedelta(days=rng.uniform(1, 730))
            opened = closed - timedelta(days=rng.uniform(5, 120))
            expected = (closed - timedelta(days=rng.choice([-10, 0, 0, 5, 15, 30]))).date()
        else:
            closed = None
            opened = now - timedelta(days=rng.uniform(1, 120))
            expected = (now + timedelta(days=rng.uniform(-30, 150))).date()
        return {
            "organization_id": organization_id,
            "name": f"商机{n}",
            "owner_id": rng.choice(reps),
            "account_id": rng.choice(accounts),
            "product_id": rng.choice(products),
            "stage": stage.value,
            "amount": Decimal(rng.randint(5, 500) * 1000),
            "currency": "CNY",
            "opened_at": opened,
            "stage_changed_at": opened,
            "closed_at": closed,
            "expected_close_date": expected,
        }

    stages = [*OPEN_STAGES]
    for start in range(0, open_deals + won, 10_000):
        with database.unit_of_work(None, system=True) as session:
            batch = [
                deal(n, rng.choice(stages) if n < open_deals else Stage.WON)
                for n in range(start, min(start + 10_000, open_deals + won))
            ]
            session.execute(insert(Opportunity), batch)
    return organization_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=20_000)
    parser.add_argument("--won", type=int, default=50_000)
    parser.add_argument("--simulations", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database = connect(fresh_sqlite(Path(directory)))
        organization_id = build(database, args.open, args.won)
        with database.unit_of_work(None, system=True) as session:
            started, cpu = time.perf_counter(), _cpu()
            snapshot = take_snapshot(session, organization_id, simulations=args.simulations, seed=1)
            session.flush()
            seconds, cpu = time.perf_counter() - started, _cpu() - cpu
            rows = session.scalar(
                select(func.count())
                .select_from(BookingsForecastRow)
                .where(BookingsForecastRow.snapshot_id == snapshot.id)
            )
            quarter = session.scalar(
                select(BookingsForecastRow)
                .where(
                    BookingsForecastRow.snapshot_id == snapshot.id,
                    BookingsForecastRow.granularity == "quarter",
                    BookingsForecastRow.dimension == "total",
                )
                .order_by(BookingsForecastRow.period_start)
            )
        print(
            f"{args.open:,} open deals, {args.won:,} won deals of history, {args.simulations:,} simulations: "
            f"snapshot in {seconds:.1f} s wall, {cpu:.1f} s CPU; {rows:,} forecast rows + {args.open:,} deal rows"
        )
        if quarter is not None:
            print(
                f"{quarter.period}: expected {quarter.expected:,.0f}, 80 % interval {quarter.low:,.0f} – "
                f"{quarter.high:,.0f} (won so far {quarter.won_to_date:,.0f}, run-rate {quarter.run_rate:,.0f})"
            )


if __name__ == "__main__":
    main()
