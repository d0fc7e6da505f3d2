"""``closeloop alerts check``: evaluate every alert threshold now (what the worker does hourly)."""

from __future__ import annotations

import typer

from closeloop.cli.common import console, database, reports_errors
from closeloop.crm.alerts.service import check_all

alerts_app = typer.Typer(help="Alert thresholds set on dashboard charts.", no_args_is_help=True)


@alerts_app.command("check")
@reports_errors
def check() -> None:
    """Check every threshold of every organization once, as its owner, and notify on breaches."""
    result = check_all(database())
    console.print(f"{result.checked:,} thresholds checked, {result.breached:,} breached")
