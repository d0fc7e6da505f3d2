"""``closeloop pools recycle``: return accounts to their public pools now (or say which would go)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from closeloop.cli.common import console, database, reports_errors, resolve_organization
from closeloop.pools import service as pools
from closeloop.pools.rules import REASONS

pools_app = typer.Typer(help="Private and public pools (私海/公海).", no_args_is_help=True)


@pools_app.command("recycle")
@reports_errors
def recycle(
    org: Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go back; change nothing")] = False,
) -> None:
    """Apply every pool's recycle rules (as the scheduled run does) and print, per pool and rule, how
    many accounts went back to the public pool — or, with --dry-run, would go."""
    db = database()
    organization = resolve_organization(db, org)
    if dry_run:
        with db.reading(None, system=True) as session:
            runs = pools.recycle(session, organization.id, dry_run=True)
    else:
        with db.unit_of_work(None, system=True) as session:
            runs = pools.recycle(session, organization.id)
    verb = "would go back" if dry_run else "went back"
    table = Table(title=f"Pools · {organization.name} · {'dry run' if dry_run else 'recycled'}")
    table.add_column("pool")
    for reason in REASONS:
        table.add_column(reason, justify="right")
    table.add_column("total", justify="right")
    table.add_column("reminded owners", justify="right")
    for run in runs:
        table.add_row(
            f"{run.pool_id} {run.pool_name}",
            *(f"{run.by_reason.get(reason, 0):,}" for reason in REASONS),
            f"{run.total:,}",
            "—" if dry_run else f"{run.reminded_owners:,}",
        )
    console.print(table)
    console.print(f"{sum(run.total for run in runs):,} accounts {verb} to their public pools")
