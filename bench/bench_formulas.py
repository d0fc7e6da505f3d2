"""Formula benchmark (GOV-2): a compiled formula against the SQL a developer would write by hand for
the same question, on the same tenant, measured in the same run.

    python bench/bench_formulas.py [--accounts 5000] [--orders 8] [--repeat 15] [--postgres URL]

The question, per account: "sales of the last 90 days, cancelled orders left out".

* **Closeloop**: ``crm.formulas.evaluate`` with
  ``SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")`` for every account —
  parsing (cached after the first run), checking, compiling, the scope door, the correlated
  aggregate as generated (``days_ago`` as a whole-day difference of UTC dates, amounts as doubles).
* **hand-written**: one ``text()`` query with the same correlated ``SUM`` over the integer cents
  and ``ordered_at >= <the first instant of the window>`` (which an index can use), on the same
  session.

The ratio is hand-written time ÷ Closeloop time (1.0: as fast as hand-written SQL). Both answers
are compared before anything is timed; the two sides then run in turn, ``--repeat`` times each,
and the medians are compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.databases import drop_postgres, fresh_postgres, fresh_sqlite  # noqa: E402
from closeloop.core.clock import utcnow  # noqa: E402
from closeloop.crm import formulas  # noqa: E402
from closeloop.crm.accounts.models import Account  # noqa: E402
from closeloop.crm.orders.models import Order  # noqa: E402
from closeloop.db.session import Database, connect  # noqa: E402
from closeloop.org import service as org_service  # noqa: E402

FORMULA = 'SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")'
HAND_WRITTEN = """
SELECT a.id,
       (SELECT COALESCE(SUM(o.total), 0) FROM orders o
         WHERE o.organization_id = :org AND o.account_id = a.id AND o.deleted_at IS NULL
           AND o.ordered_at >= :since AND o.status <> 'cancelled') AS cents
  FROM accounts a
 WHERE a.organization_id = :org AND a.deleted_at IS NULL
 ORDER BY a.id
 LIMIT :limit
"""


def build_tenant(database: Database, accounts: int, orders: int, seed: int = 7) -> int:
    """A tenant with ``accounts`` accounts of ``orders`` orders each, spread over the last 200 days."""
    rng = random.Random(seed)
    with database.unit_of_work(None, system=True) as session:
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        organization_id = org_service.create_organization(session, name="bench", slug=slug).id
    actor = org_service.system_actor(organization_id, label="bench")
    now = utcnow()
    with database.unit_of_work(actor) as session:
        session.execute(
            insert(Account), [{"organization_id": organization_id, "name": f"客户 {i}"} for i in range(accounts)]
        )
        ids = list(session.scalars(text("SELECT id FROM accounts ORDER BY id")))
        rows = [
            {
                "organization_id": organization_id,
                "number": f"SO-{account_id}-{n}",
                "account_id": account_id,
                "total": Decimal(rng.randint(100, 5_000_000)) / 100,
                "ordered_at": now - timedelta(days=rng.uniform(0, 200)),
                "status": "cancelled" if rng.random() < 0.1 else "delivered",
            }
            for account_id in ids
            for n in range(orders)
        ]
        session.execute(insert(Order), rows)
        if database.dialect == "postgresql":
            session.execute(text("ANALYZE accounts; ANALYZE orders"))
    return organization_id


def timed(runs: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The median seconds of each of ``runs``, taken in turn (so a change of load hits both alike)."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for index, run in enumerate(runs):
            started = time.perf_counter()
            run()
            times[index].append(time.perf_counter() - started)
    return [statistics.median(each) for each in times]


def measure(label: str, url: str, accounts: int, orders: int, repeat: int) -> None:
    database = connect(url, app_role="closeloop_app")
    organization_id = build_tenant(database, accounts, orders)
    actor = org_service.system_actor(organization_id, label="bench")
    window_start = datetime.combine(utcnow().date() - timedelta(days=90), clock_time(0), tzinfo=UTC)
    since: Any = window_start if database.dialect == "postgresql" else window_start.strftime("%Y-%m-%d %H:%M:%S.%f")

    def closeloop() -> list[tuple[int, Any]]:
        with database.reading(actor) as session:
            return formulas.evaluate(session, actor, "account", FORMULA, limit=accounts)

    def hand_written() -> list[tuple[int, Any]]:
        with database.reading(actor) as session:
            rows = session.execute(text(HAND_WRITTEN), {"org": organization_id, "since": since, "limit": accounts})
            return [(int(row[0]), float(row[1]) / 100) for row in rows]

    if closeloop() != hand_written():  # also the warm-up
        raise SystemExit("the formula and the hand-written query disagree")
    ours, bare = timed([closeloop, hand_written], repeat)
    database.dispose()
    print(
        f"| {label} | {accounts:,} × {orders} | {ours * 1000:,.1f} | {bare * 1000:,.1f} | **{bare / ours:.2f}** |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--postgres", default=os.environ.get("CLOSELOOP_TEST_POSTGRES_URL"), help="PostgreSQL server URL"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}")
    print(f"formula: {FORMULA}")
    print("| database | accounts × orders | Closeloop ms | hand-written ms | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as directory:
            measure("SQLite", fresh_sqlite(Path(directory)), args.accounts, args.orders, args.repeat)
    if args.postgres:
        created: list[str] = []
        try:
            measure(
                "PostgreSQL",
                fresh_postgres(args.postgres, created, prefix="formulas"),
                args.accounts,
                args.orders,
                args.repeat,
            )
        finally:
            drop_postgres(args.postgres, created)


if __name__ == "__main__":
    main()
