"""``closeloop demo``: seed the demo organization (or, with ``--scale N``, a large tenant for benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.automation.replay import Replayed, replay_checks
from closeloop.cli.common import console, database, reports_errors
from closeloop.config import settings
from closeloop.core.clock import utcnow
from closeloop.crm.accounts.models import Account
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.demo.people import SignIn
from closeloop.demo.scale import seed_scale
from closeloop.demo.seed import DEFAULT_SLUG, database_is_empty, demo_sign_ins, seed_demo
from closeloop.demo.world import DEFAULT_SEED

#: past months the demo keeps a bookings-forecast snapshot for (accuracy over time; twelve, so that
#: today's forecast has the nine finished past forecasts its interval calibration needs three months ahead)
DEMO_SNAPSHOT_MONTHS = 12

ScaleOption = Annotated[
    int | None,
    typer.Option(
        "--scale", min=1, help="Build one large seller tenant with this many opportunities (and 5× activities)"
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data")]
IfEmptyOption = Annotated[bool, typer.Option("--if-empty", help="Seed only when the database has no organization yet")]
AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="The demo's today: its history ends the day before (default: today, so the data is fresh)",
    ),
]
OrgOption = Annotated[
    str | None, typer.Option("--org", help="Slug of the organization to create (default: demo, or demo-scale-N)")
]


@reports_errors
def demo(
    scale: ScaleOption = None,
    seed: SeedOption = DEFAULT_SEED,
    if_empty: IfEmptyOption = False,
    org: OrgOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Seed a deterministic demo: a seller with its sales team, two dealers and a service provider,
    two years of leads, deals, orders, referrals, interactions and tickets up to yesterday (or the
    day before ``--as-of``); then print the sign-ins. The same seed and day give the same data."""
    settings.protect_var_dir()
    db = database()
    if if_empty and not database_is_empty(db):
        console.print("database already has data; skipping demo")
        sign_ins = demo_sign_ins(db, slug=org or DEFAULT_SLUG)
        if sign_ins and scale is None:
            _print_sign_ins(sign_ins)
        return
    if scale is not None:
        _seed_scale(scale, seed, org)
        return
    anchor = demo_anchor(as_of.date() if as_of else utcnow().date())
    console.print(f"seeding the demo organization (seed {seed}, as of {anchor.date().isoformat()}) …")
    result = seed_demo(db, seed=seed, slug=org or DEFAULT_SLUG, anchor=anchor)
    tables = ("accounts", "contacts", "leads", "opportunities", "orders", "activities", "tickets")
    table = Table("organization", *tables, title="Demo data")
    for organization_id, name in result.names.items():
        counts = result.counts.get(organization_id, {})
        table.add_row(name, *(f"{counts.get(t, 0):,}" for t in tables))
    console.print(table)
    console.print(f"seeded in {result.seconds:.1f} s")
    # bookings-forecast snapshots as of the first of each of the last six months, computed from the
    # demo history, and today's, so the forecast page has an accuracy history before the nightly task
    # has run for months
    from closeloop.forecasting.bookings import backfill_snapshots, take_snapshot

    with db.unit_of_work(None, system=True) as session:
        backfill_snapshots(session, result.organization_id, months=DEMO_SNAPSHOT_MONTHS, simulations=500)
        take_snapshot(session, result.organization_id, simulations=500)
    # the win-probability model the weekly task would train (after the snapshots, which are as of
    # days before it existed); it is used where it beat the stage rates on its holdout
    from closeloop.forecasting.opportunities import retrain
    from closeloop.org import service as org_service

    with db.unit_of_work(org_service.system_actor(result.organization_id, label="demo: win probability")) as session:
        retrain(session, result.organization_id)
    # distributors' stock reports, as they would send them (closeloop forecast import-stock), so the
    # forecast page has replenishment suggestions
    from closeloop.forecasting.actions import import_stock

    with db.unit_of_work(None, system=True) as session:
        import_stock(session, result.organization_id, dealer_stock_reports(session, result.organization_id, anchor))
    # the rules a sales VP would switch on, and what their daily checks decided over the demo's last
    # week: the decision log has something to show from the first sign-in
    replayed = seed_automation(db, result.organization_id, prefix=org or DEFAULT_SLUG, anchor=anchor)
    console.print(f"automation: {replayed.fired} decisions over the last {DEMO_RULE_DAYS} days")
    _print_sign_ins(result.sign_ins)


#: the demo's automation rules, as its sales VP would write them (parsed by the rule parser), and
#: the undo window of each: notices go at once; a task the rule creates waits the default 30 seconds
#: before it is made (its "3天内完成" is the task's due date, three days after it is made — not a
#: three-day hold on making it)
DEMO_RULES: tuple[tuple[str, int], ...] = (
    ("商机在谈判阶段停留超过21天，通知负责销售和他的经理。", 0),
    ("商机在方案阶段停留超过30天，给负责人创建一个3天内完成的跟进任务。", 30),
    ("工单打开超过3天还没关闭的，升级给销售经理。", 0),
)
#: the days before the demo's anchor whose periodic checks are run (the anchor's own day included)
DEMO_RULE_DAYS = 7


def seed_automation(db: Database, organization_id: int, *, prefix: str, anchor: datetime) -> Replayed:
    """Create :data:`DEMO_RULES` as the sales VP (enabled), then run the real periodic checks hour by
    hour over the :data:`DEMO_RULE_DAYS` days up to the anchor: decisions about the demo's own
    records, dated when the check made them; the tasks they create are made once their undo window
    ends (the anchor's own wait for the worker). Deterministic: the same data and anchor give the
    same decisions."""
    from closeloop.automation import service as rule_service
    from closeloop.automation.language import parse_rule
    from closeloop.org.models import User
    from closeloop.org.service import actor_for

    with db.unit_of_work(None, system=True) as session:
        vp = session.scalar(
            select(User).where(tenant_clause(organization_id, User), User.username == f"{prefix}.sales_vp")
        )
        assert vp is not None, "the demo has a sales VP"
        actor = actor_for(session, vp)
        for text, undo_seconds in DEMO_RULES:
            parsed = parse_rule(text, "zh")
            assert parsed.rule is not None, f"the rule parser reads the demo rule {text!r}: {parsed.problems}"
            rule_service.create_rule(
                session, actor, name=text.rstrip("。"), definition=parsed.rule, text=text, lang="zh",
                enabled=True, undo_seconds=undo_seconds,
            )  # fmt: skip
    since = anchor - timedelta(days=DEMO_RULE_DAYS) + timedelta(hours=1)  # the anchor's hour is the last
    return replay_checks(db, organization_id, since=since, until=anchor)


#: distributors whose stock the demo reports, and weeks of their recent demand each holds in turn
#: (from short, so that a suggestion is due, to long, so that none is)
STOCK_REPORTS = 12
COVER_WEEKS = (Decimal("0.5"), Decimal("1.5"), Decimal("3"), Decimal("6"), Decimal("10"))


def dealer_stock_reports(session: Session, organization_id: int, anchor: datetime) -> list[dict[str, str]]:
    """Stock reports of the distributors (分销 accounts) that ordered most in the 13 weeks before
    ``anchor``: per account and product they ordered, on hand = a few weeks of that demand, reported
    two days ago — the rows a dealer's CSV would carry."""
    since = anchor - timedelta(weeks=13)
    ordered = session.execute(
        select(Order.account_id, OrderLine.product_id, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .join(Account, Account.id == Order.account_id)
        .where(
            tenant_clause(organization_id, OrderLine),
            tenant_clause(organization_id, Order),
            tenant_clause(organization_id, Account),
            Account.industry == "分销",
            Order.ordered_at >= since,
            Order.ordered_at < anchor,
            Order.status != "cancelled",
        )
        .group_by(Order.account_id, OrderLine.product_id)
        .order_by(func.sum(OrderLine.quantity).desc(), Order.account_id, OrderLine.product_id)
        .limit(STOCK_REPORTS)
    ).all()
    reported = (anchor - timedelta(days=2)).date().isoformat()
    return [
        {
            "account": str(account_id),
            "product": str(product_id),
            "on_hand": str((Decimal(quantity) / 13 * COVER_WEEKS[index % len(COVER_WEEKS)]).quantize(Decimal(1))),
            "reported_at": reported,
        }
        for index, (account_id, product_id, quantity) in enumerate(ordered)
    ]


def demo_anchor(today: date) -> datetime:
    """The demo's anchor for ``today``: its midnight (UTC), so everything generated lies before it."""
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def _seed_scale(opportunities: int, seed: int, slug: str | None) -> None:
    last_shown: dict[str, float] = {}

    def progress(table: str, written: int, expected: int | None, rate: float) -> None:
        now = time.perf_counter()
        if written != expected and now - last_shown.get(table, 0.0) < 5:
            return
        last_shown[table] = now
        if table == "indexes":
            console.print(f"  indexes: {written} / {expected} rebuilt", highlight=False)
            return
        total = f" / {expected:,}" if expected else ""
        console.print(f"  {table}: {written:,}{total} rows ({rate:,.0f} rows/s)", highlight=False)

    console.print(f"building a scale tenant with {opportunities:,} opportunities (seed {seed}) …")
    result = seed_scale(database(), opportunities=opportunities, seed=seed, slug=slug, progress=progress)
    table = Table("table", "rows", title=f"Scale tenant {result.slug} (organization {result.organization_id})")
    for name, count in result.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    total = sum(result.counts.values())
    console.print(
        f"loaded {total:,} rows in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s overall)",
        highlight=False,
    )
    _print_sign_ins(result.sign_ins)


def _print_sign_ins(sign_ins: Sequence[SignIn]) -> None:
    table = Table(title="Demo sign-ins")
    table.add_column("username", no_wrap=True, min_width=max((len(s.username) for s in sign_ins), default=8))
    table.add_column("role", no_wrap=True)
    table.add_column("password", no_wrap=True, min_width=max((len(s.password) for s in sign_ins), default=8))
    table.add_column("organization")
    for sign_in in sign_ins:
        table.add_row(sign_in.username, sign_in.role.value, sign_in.password, sign_in.organization)
    console.print(table)
    base = f"http://127.0.0.1:{settings.port}"
    console.print(f"Sign in at [bold]{base}[/] · API docs at {base}/api/docs", highlight=False)
