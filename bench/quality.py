"""Data-quality scan benchmark (GOV-6): how long a full and an incremental scan of a large tenant
take, as ratios against reading the same tables bare, measured in the same process.

    CLOSELOOP_DATABASE_URL=sqlite:////tmp/scale.db python bench/quality.py [--org demo-scale-1000000] [--touch 1000]

The tenant is built beforehand with ``closeloop demo --scale 1000000`` (then ``closeloop migrate``).
Measured, in order:

* **baseline** (measured twice; the second, warm, run counts): ``SELECT count(*)`` of the
  organization's live accounts, contacts, leads, opportunities and products, plus one pass
  streaming the contact and account columns the rules read — the least any scan must do;
* **first full scan**: every rule over every record, opening a defect and a task (with its audit
  entry) for each finding;
* **second full scan**: the same with nothing changed (the steady state of a full rescan);
* **incremental scan** after ``--touch`` contacts and accounts were changed (half broken, half
  fixed): only changed records are re-checked by the record rules, only the touched name blocks
  by the duplicate rules; time-dependent rules re-check those plus the records whose due
  boundary was crossed since the last scan;
* **incremental scan, nothing changed**;
* **incremental scan a day later** (clock moved, nothing edited): the time-dependent rules re-check
  the records whose boundary the day crossed;
* **freshness check**: every field's and feed's rhythm learned from the audit trail's last year.

Each step prints its wall time and this process's CPU time, each as a ratio to the baseline's:
on a machine shared with other work the CPU ratio is the one to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from closeloop.config import settings  # noqa: E402
from closeloop.core.clock import frozen_at, utcnow  # noqa: E402
from closeloop.crm.accounts.models import Account  # noqa: E402
from closeloop.crm.contacts.models import Contact  # noqa: E402
from closeloop.db.scope import tenant_clause  # noqa: E402
from closeloop.db.session import Database, connect  # noqa: E402
from closeloop.org import service as org_service  # noqa: E402
from closeloop.quality import freshness  # noqa: E402
from closeloop.quality.rules import MODELS  # noqa: E402
from closeloop.quality.scanner import ScanResult  # noqa: E402
from closeloop.quality.service import run_scan  # noqa: E402


def baseline(database: Database, organization_id: int) -> tuple[float, float]:
    timer = Timer()
    with database.reading(org_service.system_actor(organization_id)) as session:
        for model in MODELS.values():
            session.scalar(select(func.count()).select_from(model).where(tenant_clause(organization_id, model)))
        columns = {
            Contact: (Contact.id, Contact.owner_id, Contact.name, Contact.mobile, Contact.phone, Contact.email),
            Account: (Account.id, Account.owner_id, Account.name, Account.address, Account.industry),
        }
        for model, selected in columns.items():
            for _ in session.execute(
                select(*selected).where(tenant_clause(organization_id, model)).execution_options(yield_per=5000)
            ):
                pass
    return timer.stop()


def touch(database: Database, organization_id: int, count: int) -> None:
    """Break half of ``count`` contacts' e-mails and fix the other half's; rename a few accounts."""
    with database.unit_of_work(org_service.system_actor(organization_id)) as session:
        ids = list(
            session.scalars(
                select(Contact.id).where(tenant_clause(organization_id, Contact)).order_by(Contact.id).limit(count)
            )
        )
        now = utcnow()
        for index, contact_id in enumerate(ids):
            email = "broken..address@example.com" if index % 2 == 0 else f"fixed.{contact_id}@example.com"
            session.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(email=email, updated_at=now, version=Contact.version + 1)
            )
        accounts = list(
            session.scalars(
                select(Account.id)
                .where(tenant_clause(organization_id, Account))
                .order_by(Account.id)
                .limit(count // 10)
            )
        )
        for account_id in accounts:
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(name=Account.name + "（总部）", updated_at=now, version=Account.version + 1)
            )


class Timer:
    """Wall time and this process's CPU time of a step: on a shared machine the CPU time (and its
    ratio) stays meaningful when other work takes the cores, the wall time does not."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def line(name: str, spent: tuple[float, float], base: tuple[float, float], result: ScanResult | None = None) -> None:
    extra = ""
    if result is not None:
        changed = sum(result.changed.values())
        extra = f" {result.opened:,} opened, {result.resolved:,} resolved, {changed:,} changed records"
    (wall, cpu), (base_wall, base_cpu) = spent, base
    print(
        f"| {name} | {wall:,.1f} s | {cpu:,.1f} s | {wall / base_wall:,.1f}× | {cpu / base_cpu:,.1f}× |{extra} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--org", default="demo-scale-1000000")
    parser.add_argument("--touch", type=int, default=1000, help="contacts to change before the incremental scan")
    parser.add_argument("--one-full", action="store_true", help="skip the second full scan (a loaded machine)")
    arguments = parser.parse_args()
    url = os.environ.get("CLOSELOOP_DATABASE_URL") or settings.effective_database_url
    database = connect(url, app_role=settings.database_app_role)
    with database.reading(None, system=True) as session:
        organization = org_service.find_organization(session, arguments.org)
    org = organization.id
    baseline(database, org)  # warm the caches the scans will find warm too
    base = baseline(database, org)
    print(f"tenant {organization.slug} on {database.dialect}; baseline (counts + one pass over the read columns)")
    print("| step | wall | CPU | wall × baseline | CPU × baseline | |\n| --- | ---: | ---: | ---: | ---: | --- |")
    line("baseline", base, base)
    fulls = [("first full scan", True)] + ([] if arguments.one_full else [("second full scan", True)])
    for name, full in fulls:
        timer = Timer()
        result = run_scan(database, org, full=full)
        line(name, timer.stop(), base, result)
    settings.quality_overlap_seconds = 0
    time.sleep(0.01)
    touch(database, org, arguments.touch)
    timer = Timer()
    result = run_scan(database, org)
    line(
        f"incremental, {arguments.touch:,} contacts + {arguments.touch // 10:,} accounts changed",
        timer.stop(),
        base,
        result,
    )
    timer = Timer()
    result = run_scan(database, org)
    line("incremental, nothing changed", timer.stop(), base, result)
    # the nightly case: a day later, nothing edited, but the clock crossed the time rules' boundaries
    with frozen_at(utcnow() + timedelta(days=1)):
        timer = Timer()
        result = run_scan(database, org)
    line("incremental, a day later, nothing changed", timer.stop(), base, result)
    timer = Timer()
    with database.unit_of_work(org_service.system_actor(org)) as session:
        feeds = freshness.evaluate(session, org)
    line(f"freshness check ({len(feeds):,} feeds)", timer.stop(), base)


if __name__ == "__main__":
    main()
