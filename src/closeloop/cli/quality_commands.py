"""``closeloop quality scan``: run the data-quality scanner now and print what is open, by rule."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from closeloop.cli.common import console, database, reports_errors, resolve_organization
from closeloop.integrations.importing.feeds import SOURCES
from closeloop.org import service as org_service
from closeloop.quality import freshness
from closeloop.quality.rules import RULES
from closeloop.quality.scanner import open_counts
from closeloop.quality.service import run_scan

quality_app = typer.Typer(help="The data-quality loop (defects found in CRM records).", no_args_is_help=True)


@quality_app.command("scan")
@reports_errors
def scan(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-check every record (default: only what changed)")] = False,
) -> None:
    """Scan one organization now: open defects and tasks for what is wrong, close those fixed, and
    print the open defects of each rule."""
    db = database()
    organization = resolve_organization(db, org)
    result = run_scan(db, organization.id, full=full)
    with db.reading(org_service.system_actor(organization.id)) as session:
        counts = open_counts(session, organization.id)
    english = organization.default_locale.startswith("en")
    table = Table(title=f"Data quality · {organization.name}")
    # the counts never shrink away on a narrow terminal; the description wraps instead
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True, min_width=8)
    for name in ("open", "new", "fixed"):
        table.add_column(name, justify="right", no_wrap=True, min_width=6)
    table.add_column("defect", overflow="fold")
    for rule in RULES:
        outcome = result.rules.get(rule.id)
        table.add_row(
            rule.id,
            rule.severity.value,
            f"{counts.get(rule.id, 0):,}",
            f"{outcome.opened:,}" if outcome else "",
            f"{outcome.resolved:,}" if outcome else "",
            rule.label_en if english else rule.label_zh,
        )
    console.print(table)
    kind = "full" if result.full else f"incremental (records changed since {result.since:%Y-%m-%d %H:%M:%S} UTC)"
    console.print(
        f"{kind} scan {result.scan_id} in {result.seconds:.1f} s: {result.opened:,} defects opened, "
        f"{result.resolved:,} resolved, {sum(counts.values()):,} open"
    )


_STATUS_STYLE = {"stale": "bold red", "fresh": "green", "irregular": "dim", "muted": "dim"}


@quality_app.command("freshness")
@reports_errors
def freshness_command(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
    alert: Annotated[
        bool, typer.Option("--alert/--no-alert", help="Tell the owners of stale feeds (as the nightly job does)")
    ] = True,
) -> None:
    """Print each monitored field's and import feed's freshness: its usual gap between changes, how
    long it has been silent and whether that is too long; tell the owners of stale ones."""
    db = database()
    organization = resolve_organization(db, org)
    actor = org_service.system_actor(organization.id, label="freshness monitor")
    if alert:
        with db.unit_of_work(actor) as session:
            run = freshness.alert(session, organization.id, sources=SOURCES)
        statuses, alerted = run.statuses, run.alerted
    else:
        with db.reading(actor) as session:
            statuses, alerted = freshness.evaluate(session, organization.id, sources=SOURCES), {}
    english = organization.default_locale.startswith("en")
    table = Table(title=f"Freshness · {organization.name}")
    table.add_column("feed", overflow="fold", min_width=16)
    table.add_column("status", no_wrap=True)
    table.add_column("last change", no_wrap=True)
    table.add_column("silent / limit (d)", justify="right")
    table.add_column("usual gap (d)", justify="right")
    table.add_column("owner", overflow="fold")
    fallback = "sales VP / schema managers" if english else "销售副总 / 模式管理员"
    for item in statuses:
        told = alerted.get(item.key, [])
        table.add_row(
            item.key,
            f"[{_STATUS_STYLE[item.status]}]{item.status}[/]",
            f"{item.last_change:%Y-%m-%d}" if item.last_change else "",
            " / ".join("" if days is None else str(days) for days in (item.silent_days, item.limit_days)),
            "" if item.usual_gap_days is None else str(item.usual_gap_days),
            (item.owner or fallback) + (f" (alerted {len(told)})" if told else ""),
        )
    console.print(table)
    stale = sum(1 for item in statuses if item.status == "stale")
    console.print(
        f"{len(statuses):,} feeds: {stale:,} stale, {sum(1 for i in statuses if i.status == 'fresh'):,} fresh, "
        f"{sum(1 for i in statuses if i.status == 'irregular'):,} without a regular rhythm; "
        f"{sum(map(len, alerted.values())):,} alerts sent"
    )
