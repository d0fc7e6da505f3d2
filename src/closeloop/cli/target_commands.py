"""``closeloop targets import FILE.csv`` and ``closeloop targets list`` (CN-6, 目标)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from closeloop.cli.common import console, database, errors, fail, reports_errors, resolve_actor, resolve_organization
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.errors import ValidationFailed
from closeloop.targets import service as targets

targets_app = typer.Typer(help="Targets of the company, departments and people (目标).", no_args_is_help=True)

Org = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")]
As = Annotated[str | None, typer.Option("--as", help="Act as this username (default: the system)")]


@targets_app.command("import")
@reports_errors
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A UTF-8 CSV file")],
    org: Org = None,
    username: As = None,
) -> None:
    """Set targets from a CSV with the columns scope, subject, metric, year, month, value (subject:
    empty for the company, a department's name, or a username). Every row is checked first; any
    problem is printed with its line number and nothing is imported."""
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in targets.IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise fail(f"{file.name}: missing column(s) {', '.join(missing)}", 2)
        rows = list(reader)
    db = database()
    organization = resolve_organization(db, org)
    actor = resolve_actor(db, organization, username, label="cli: targets import")
    try:
        with db.unit_of_work(actor) as session:
            count = targets.import_targets(session, actor, rows)
    except ValidationFailed as error:
        for problem in error.problems:
            errors.print(f"{file.name} {problem.field}: {problem.message}", highlight=False, markup=False)
        raise fail(error.message, 2) from None
    console.print(f"{count} target(s) set in {organization.name}")


@targets_app.command("list")
@reports_errors
def list_targets(
    year: Annotated[int | None, typer.Option("--year", help="Default: this year")] = None,
    month: Annotated[int | None, typer.Option("--month", min=0, max=12, help="0 or empty: the whole year")] = None,
    org: Org = None,
    username: As = None,
) -> None:
    """The period's targets with what has been reached (in the business time zone's months)."""
    db = database()
    organization = resolve_organization(db, org)
    actor = resolve_actor(db, organization, username, label="cli: targets list")
    year = year or calendar.today(settings.business_timezone).year
    with db.reading(actor) as session:
        found = targets.attainment(session, actor, year=year, month=month or None)
    period = f"{year}-{month:02d}" if month else str(year)
    table = Table(title=f"Targets · {organization.name} · {period}")
    for column in ("scope", "subject", "metric", "target", "reached", "attainment"):
        table.add_column(column, justify="right" if column in ("target", "reached", "attainment") else "left")
    for row in found:
        table.add_row(
            str(row.target.scope),
            row.subject,
            str(row.target.metric),
            f"{row.target.value:,}",
            f"{row.actual:,}",
            f"{row.ratio}%" if row.ratio is not None else "—",
        )
    console.print(table)
