"""Pool recycling benchmark (CN-1): one recycle run over a large tenant, as a ratio against a bare
``UPDATE`` of the same rows, measured in the same process.

    python bench/bench_pools.py [--accounts 200000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
    python bench/bench_pools.py --maven /work/shared/data/maven-crm
    python bench/bench_pools.py --tenant sqlite:////tmp/scale.db demo-scale-1000000

With ``--maven``, the real Maven CRM data set is imported into a fresh SQLite database instead, and
the script prints how many accounts each recycle rule, alone, would return to the public pool
today and on the day after the data set's last closed deal.

A fresh, migrated database (SQLite in a temporary directory, and PostgreSQL when a server is given)
gets one organization with 50 reps and ``--accounts`` owned accounts created over two years, half
of them with an activity in the last 120 days and one in ten with an opportunity (won, lost or
open). The pool takes every account: no follow-up for 30 days, no new opportunity for 90, a
14-day protection period, tier A 60 days of follow-up; won accounts and open opportunities exempt.

Measured, each in its own transaction that is rolled back (so every step sees the same data), the
second of two runs counting:

* **bare update** (the baseline): ``UPDATE accounts SET owner_id = NULL, version = version + 1,
  updated_at = … WHERE id IN (SELECT id FROM <the eligible ids, in a temporary table>)`` — the
  least any recycling of these rows must write;
* **dry run**: the rules' counts per reason (what ``closeloop pools recycle --dry-run`` prints);
* **recycle**: the real run — eligibility evaluated in the database, the owner-change history
  written with ``INSERT … SELECT``, the one ``UPDATE`` of the accounts, the pool state of each
  account, the audit entry, and the owners' reminders.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.databases import drop_postgres, fresh_postgres, fresh_sqlite  # noqa: E402
from closeloop.core.clock import utcnow  # noqa: E402
from closeloop.crm.accounts.models import Account  # noqa: E402
from closeloop.crm.activities.models import Activity  # noqa: E402
from closeloop.crm.opportunities.models import Opportunity  # noqa: E402
from closeloop.db.scope import tenant_clause  # noqa: E402
from closeloop.db.session import Database, connect  # noqa: E402
from closeloop.governance.permissions import Role  # noqa: E402
from closeloop.org import service as org_service  # noqa: E402
from closeloop.pools import rules  # noqa: E402
from closeloop.pools import service as pools  # noqa: E402
from closeloop.pools.models import Pool, PoolAccount  # noqa: E402

CHUNK = 10_000


def bench_pool(organization_id: int) -> Pool:
    """The benchmark's pool over every account of the organization (the rules of the docstring)."""
    return Pool(
        organization_id=organization_id,
        name="华东公海",
        region_ids=[],
        admin_ids=[],
        follow_up_days=30,
        opportunity_days=90,
        protection_days=14,
        tier_rules={"A": {"follow_up_days": 60}},
        remind_days=3,
        exempt_won=True,
        exempt_open_opportunities=True,
    )


def existing_tenant(url: str, slug: str) -> None:
    """The same measurement on a tenant already built (e.g. ``closeloop demo --scale 1000000``):
    its pools are disabled and the benchmark's pool added (committed: use a scratch database)."""
    from closeloop.org.models import Organization

    database = connect(url)
    with database.unit_of_work(None, system=True) as session:
        organization = session.scalar(select(Organization).where(Organization.slug == slug))
        if organization is None:
            raise SystemExit(f"no organization {slug!r} in {url}")
        organization_id = organization.id
        pools_there = list(session.scalars(select(Pool).where(tenant_clause(organization_id, Pool))))
        if not any(pool.name == "华东公海" and pool.region_ids == [] for pool in pools_there):
            for pool in pools_there:
                session.delete(pool)
            session.add(bench_pool(organization_id))
        accounts = session.scalar(
            select(func.count()).select_from(Account).where(tenant_clause(organization_id, Account))
        )
    report(f"{slug} ({database.write_engine.dialect.name})", measure(database, organization_id), int(accounts or 0))
    database.dispose()


def build(database: Database, accounts: int, seed: int = 7) -> int:
    """The organization, its reps, its pool and ``accounts`` accounts with their activities and deals."""
    rng = random.Random(seed)
    now = utcnow()
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(session, name="Pool bench", slug=f"pool-bench-{seed}")
        system = org_service.system_actor(organization.id)
        region = org_service.ensure_region(session, system, name="华东")
        reps = [
            org_service.create_user(
                session,
                system,
                data=org_service.NewUser(
                    username=f"bench-rep-{organization.id}-{n}",
                    display_name=f"代表{n}",
                    role=Role.REP,
                    region_id=region.id,
                ),
            ).id
            for n in range(50)
        ]
        session.add(bench_pool(organization.id))
        organization_id = organization.id
        region_id = region.id
    for start in range(0, accounts, CHUNK):
        with database.unit_of_work(None, system=True) as session:
            rows: list[dict[str, Any]] = [
                {
                    "organization_id": organization_id,
                    "name": f"客户{n}",
                    "tier": rng.choice(("A", "B", "C", None)),
                    "region_id": region_id,
                    "owner_id": rng.choice(reps),
                    "created_at": now - timedelta(days=rng.uniform(0, 730)),
                    "updated_at": now,
                    "version": 1,
                    "currency": "CNY",
                    "custom": {},
                }
                for n in range(start, min(start + CHUNK, accounts))
            ]
            first = session.execute(insert(Account).returning(Account.id), rows).scalars().all()
            activities = [
                {
                    "organization_id": organization_id,
                    "kind": "call",
                    "direction": "outbound",
                    "occurred_at": now - timedelta(days=rng.uniform(0, 120)),
                    "account_id": account_id,
                    "user_id": rng.choice(reps),
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for account_id in first
                if rng.random() < 0.5
            ]
            if activities:
                session.execute(insert(Activity), activities)
            deals = []
            for account_id in first:
                if rng.random() < 0.1:
                    stage = rng.choice(("won", "lost", "negotiation"))
                    opened = now - timedelta(days=rng.uniform(0, 400))
                    deals.append(
                        {
                            "organization_id": organization_id,
                            "name": "商机",
                            "account_id": account_id,
                            "owner_id": rng.choice(reps),
                            "stage": stage,
                            "opened_at": opened,
                            "closed_at": opened + timedelta(days=20) if stage != "negotiation" else None,
                            "stage_changed_at": opened,
                            "currency": "CNY",
                            "created_at": now,
                            "updated_at": now,
                            "version": 1,
                            "custom": {},
                        }
                    )
            if deals:
                session.execute(insert(Opportunity), deals)
    return organization_id


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def measure(database: Database, organization_id: int) -> dict[str, float | int]:
    with database.reading(None, system=True) as session:
        pool = session.scalar(select(Pool).where(tenant_clause(organization_id, Pool)))
        assert pool is not None
        now = utcnow()
        ids = list(session.scalars(rules.eligible(pool, now, []).with_only_columns(Account.id)))
    results: dict[str, float | int] = {"eligible": len(ids)}

    def bare() -> float:
        with database.unit_of_work(None, system=True) as session:
            session.execute(text("CREATE TEMPORARY TABLE bench_ids (id BIGINT PRIMARY KEY)"))
            for start in range(0, len(ids), CHUNK):
                session.execute(
                    text("INSERT INTO bench_ids (id) VALUES (:id)"), [{"id": i} for i in ids[start : start + CHUNK]]
                )
            spent = timed(
                lambda: session.execute(
                    update(Account)
                    .where(tenant_clause(organization_id, Account), Account.id.in_(text("SELECT id FROM bench_ids")))
                    .values(owner_id=None, version=Account.version + 1, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
            session.rollback()
            return spent

    def dry() -> float:
        with database.reading(None, system=True) as session:
            return timed(lambda: pools.recycle(session, organization_id, dry_run=True, now=now))

    def real() -> float:
        with database.writing(None, system=True) as session:
            runs: list[pools.PoolRun] = []
            spent = timed(lambda: runs.extend(pools.recycle(session, organization_id, now=now)))
            assert runs[0].total == len(ids), (runs[0].total, len(ids))
            results["reminded_accounts"] = runs[0].reminded_accounts
            session.rollback()
            return spent

    for name, step in (("bare_update", bare), ("dry_run", dry), ("recycle", real)):
        step()
        results[name] = step()
    return results


def report(label: str, results: dict[str, float | int], accounts: int) -> None:
    base = float(results["bare_update"])
    print(
        f"{label}: {accounts:,} accounts, {results['eligible']:,} eligible, "
        f"{results['reminded_accounts']:,} in reminders"
    )
    for name in ("bare_update", "dry_run", "recycle"):
        value = float(results[name])
        print(f"  {name:<12} {value:8.3f} s   ×{value / base:6.2f} of the bare update")


def maven(directory: Path) -> None:
    """Per rule, alone: how many of the Maven accounts it would return (today, and as of the data)."""
    from closeloop.integrations.importing.maven import import_maven_crm

    with tempfile.TemporaryDirectory() as folder:
        database = connect(fresh_sqlite(Path(folder)))
        summary = import_maven_crm(database, directory)
        organization_id = summary.organization_id
        # The data set's accounts have no owner (its deals have sales agents): each account is given
        # the agent of its latest deal, held since its first deal opened, as a team would on
        # taking the data over (the accounts' rows themselves were created by the import, today).
        with database.unit_of_work(None, system=True) as session:
            latest = (
                select(Opportunity.owner_id)
                .where(Opportunity.account_id == Account.id, Opportunity.owner_id.is_not(None))
                .order_by(Opportunity.opened_at.desc())
                .limit(1)
                .scalar_subquery()
            )
            session.execute(
                update(Account)
                .where(tenant_clause(organization_id, Account), Account.owner_id.is_(None))
                .values(owner_id=latest)
                .execution_options(synchronize_session=False)
            )
            first = (
                select(
                    Opportunity.organization_id,
                    Opportunity.account_id,
                    func.min(Opportunity.opened_at),
                )
                .where(tenant_clause(organization_id, Opportunity), Opportunity.account_id.is_not(None))
                .group_by(Opportunity.organization_id, Opportunity.account_id)
            )
            session.execute(insert(PoolAccount).from_select(["organization_id", "account_id", "owned_since"], first))
        with database.reading(None, system=True) as session:
            owned = session.scalar(
                select(func.count())
                .select_from(Account)
                .where(tenant_clause(organization_id, Account), Account.owner_id.is_not(None))
            )
            total = session.scalar(
                select(func.count()).select_from(Account).where(tenant_clause(organization_id, Account))
            )
            last = session.scalar(
                select(func.max(Opportunity.closed_at)).where(tenant_clause(organization_id, Opportunity))
            )
            assert last is not None, "the data set has closed deals"
            print(
                f"Maven CRM: {total} accounts, {owned} with an owner (the agent of the latest deal); "
                f"last deal closed {last:%Y-%m-%d}"
            )
            rules_alone = {
                "follow_up_days": 30,
                "opportunity_days": 90,
                "deal_days": 180,
                "protection_days": 14,
            }
            for exempt in (True, False):
                print(f"  exemptions for won accounts and open opportunities: {'on' if exempt else 'off'}")
                for field, days in rules_alone.items():
                    pool = Pool(
                        organization_id=organization_id,
                        name="maven",
                        region_ids=[],
                        tier_rules={},
                        exempt_won=exempt,
                        exempt_open_opportunities=exempt,
                        **{field: days},
                    )
                    counts = []
                    for moment in (utcnow(), last + timedelta(days=1)):
                        chosen = rules.eligible(pool, moment, []).subquery()
                        counts.append(session.scalar(select(func.count()).select_from(chosen)) or 0)
                    print(f"    {field}={days:<4} today {counts[0]:>3}   as of the data {counts[1]:>3}")
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument(
        "--postgres", default=os.environ.get("CLOSELOOP_TEST_POSTGRES_URL"), help="PostgreSQL server URL"
    )
    parser.add_argument("--maven", type=Path, help="the Maven CRM data set's folder: rule counts on real data")
    parser.add_argument(
        "--tenant",
        nargs=2,
        metavar=("URL", "SLUG"),
        help="measure on an organization already built, e.g. sqlite:////tmp/scale.db demo-scale-1000000",
    )
    options = parser.parse_args()
    if options.tenant:
        existing_tenant(*options.tenant)
        return
    if options.maven:
        maven(options.maven)
        return
    with tempfile.TemporaryDirectory() as directory:
        url = fresh_sqlite(Path(directory))
        database = connect(url)
        organization_id = build(database, options.accounts)
        report("SQLite", measure(database, organization_id), options.accounts)
        database.dispose()
    if options.postgres:
        created: list[str] = []
        try:
            url = fresh_postgres(options.postgres, created, prefix="pools")
            database = connect(url)
            organization_id = build(database, options.accounts)
            with database.unit_of_work(None, system=True) as session:
                session.execute(text("ANALYZE"))
            report("PostgreSQL", measure(database, organization_id), options.accounts)
            database.dispose()
        finally:
            drop_postgres(options.postgres, created)


if __name__ == "__main__":
    main()
