"""``closeloop import …`` and ``closeloop export …`` (filled in with the import/export module)."""

from __future__ import annotations

import typer

import_app = typer.Typer(help="Import records from CSV/XLSX files, or a known data set.", no_args_is_help=True)


def export() -> None:
    """Export records to CSV or XLSX."""
    raise typer.Exit(1)
