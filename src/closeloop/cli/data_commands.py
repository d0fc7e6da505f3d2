"""``closeloop import <entity> FILE``, ``closeloop import maven-crm DIR`` and ``closeloop export <entity>``.

Exit status: 0 when an import ran — even if some rows were invalid (they are listed, and were not
imported); 2 when the input cannot be used at all (unreadable file, unknown column or field, a
required field unmapped, a bad filter); 1 for anything else (such as a missing permission).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from closeloop.cli.common import console, database, errors, fail, reports_errors, resolve_actor, resolve_organization
from closeloop.core.clock import utcnow
from closeloop.integrations import exporting
from closeloop.integrations.exporting import ExportFormat
from closeloop.integrations.importing import mappings, maven
from closeloop.integrations.importing.custom import as_import_fields, custom_fields_for
from closeloop.integrations.importing.engine import iter_problem_lines, run_import
from closeloop.integrations.importing.entities import ENTITIES
from closeloop.integrations.importing.fields import fields_of, suggest_mapping
from closeloop.integrations.importing.readers import read_table
from closeloop.integrations.importing.report import ImportReport

import_app = typer.Typer(help="Import records from CSV/XLSX files, or a known data set.", no_args_is_help=True)

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")]
AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (permissions, row scope and field masks apply)")
]
#: problems printed on screen; ``--report`` writes them all
SHOWN_PROBLEMS = 50


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``["a=b", …]`` as a dict; a pair without ``=`` is bad input (exit 2)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"{option} takes COLUMN=FIELD pairs, not '{pair}'", 2)
        parsed[key.strip()] = value.strip()
    return parsed


def overridden(suggested: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """The suggested mapping with ``--map`` applied: ``COLUMN=FIELD`` maps the column to the field
    (and no other column to it any more), ``COLUMN=`` leaves the column out."""
    fields = {field for field in overrides.values() if field}
    mapping = {column: field for column, field in suggested.items() if field not in fields}
    for column, field in overrides.items():
        if field:
            mapping[column] = field
        else:
            mapping.pop(column, None)
    return mapping


def _print_mapping(headers: list[str], mapping: dict[str, str], *, suggested: bool) -> None:
    table = Table("column", "field", title="Suggested mapping" if suggested else "Mapping")
    for header in headers:
        table.add_row(header, mapping.get(header, "[dim](not imported)[/]"))
    console.print(table)


def _print_report(report: ImportReport, report_path: Path | None) -> None:
    console.print(("Dry run: " if report.dry_run else "") + report.summary(), highlight=False)
    lines = list(iter_problem_lines(report))
    for line in lines[:SHOWN_PROBLEMS]:
        console.print(f"  {line}", highlight=False, markup=False)
    hidden = len(lines) - SHOWN_PROBLEMS + report.problems_omitted
    if hidden > 0:
        console.print(f"  … and {hidden} more problems" + (" (see the report file)" if report_path else ""))
    for warning in report.warnings[:SHOWN_PROBLEMS]:
        console.print(f"  row {warning.row}: warning: {warning.reason}", highlight=False, markup=False)
    if len(report.warnings) > SHOWN_PROBLEMS:
        console.print(f"  … and {len(report.warnings) - SHOWN_PROBLEMS} more warnings", highlight=False)
    if report.invalid:
        rows = "1 invalid row was" if report.invalid == 1 else f"{report.invalid} invalid rows were"
        console.print(
            f"{rows} not imported; "
            + ("nothing was stored (dry run)." if report.dry_run else "the valid rows were imported."),
            highlight=False,
        )
    elif report.dry_run:
        console.print("Nothing was stored (dry run).")
    if report_path is not None:
        report_path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"report written to {report_path}")


def _import_command(entity: str) -> Callable[..., None]:
    def import_entity(
        file: Annotated[Path, typer.Argument(help="A CSV (UTF-8, GBK, UTF-16) or XLSX file", show_default=False)],
        map_: Annotated[
            list[str] | None,
            typer.Option("--map", help="COLUMN=FIELD (COLUMN= leaves it out), repeatable; changes the suggestion"),
        ] = None,
        mapping_name: Annotated[
            str | None, typer.Option("--mapping", help="NAME of a saved import mapping (see /api/v1/import-mappings)")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; store nothing")] = False,
        encoding: Annotated[str | None, typer.Option(help="The CSV file's encoding (default: detected)")] = None,
        sheet: Annotated[str | None, typer.Option(help="The XLSX sheet (default: the first)")] = None,
        org: OrgOption = None,
        as_user: AsOption = None,
        report: Annotated[Path | None, typer.Option("--report", help="Also write the full report (JSON) here")] = None,
    ) -> None:
        db = database()
        organization = resolve_organization(db, org)
        actor = resolve_actor(db, organization, as_user, label="cli import")
        table = read_table(file, encoding=encoding, sheet=sheet)
        if map_ and mapping_name:
            raise typer.BadParameter("give --map or --mapping, not both", param_hint="--mapping")
        if mapping_name:
            with db.reading(actor) as session:
                saved = mappings.find_mapping(session, actor, mapping_name)
            if saved.entity != entity:
                raise typer.BadParameter(f"'{mapping_name}' maps {saved.entity}, not {entity}", param_hint="--mapping")
            mapping = dict(saved.columns)
            _print_mapping(table.headers, mapping, suggested=False)
        else:
            with db.reading(actor) as session:
                extra = as_import_fields(custom_fields_for(session, actor, entity))
            mapping = suggest_mapping(table.headers, entity, extra)
            if map_:
                mapping = overridden(mapping, parse_pairs(map_, "--map"))
            _print_mapping(table.headers, mapping, suggested=not map_)
        source = f"{table.format}" + (f", {table.encoding}" if table.encoding else "")
        console.print(f"{file.name} ({source}): {len(table.rows)} rows → {entity} of {organization.slug}")
        if dry_run:
            with db.reading(actor) as session:
                result = run_import(session, actor, entity=entity, table=table, mapping=mapping, dry_run=True)
        else:
            with db.unit_of_work(actor) as session:
                result = run_import(session, actor, entity=entity, table=table, mapping=mapping)
        _print_report(result, report)

    names = ", ".join(f.name + ("*" if f.required else "") for f in fields_of(entity))
    import_entity.__doc__ = (
        f"Import {entity.replace('_', ' ')} from a CSV or XLSX file.\n\n"
        f"Fields: {names} (* = required). Headers in English or Chinese are mapped automatically; "
        "invalid rows are reported and skipped, the rest are imported in one transaction."
    )
    return import_entity


for _entity in ENTITIES:
    import_app.command(_entity)(reports_errors(_import_command(_entity)))


@import_app.command("maven-crm")
@reports_errors
def import_maven_crm(
    directory: Annotated[Path, typer.Argument(help="The folder with accounts.csv, products.csv, sales_teams.csv, …")],
    org: Annotated[
        str | None, typer.Option("--org", help="Load into this organization (default: MavenTech, created if needed)")
    ] = None,
    as_is: Annotated[
        bool,
        typer.Option(
            "--as-is",
            help="Keep the source's values as written (the sector typo, the product name that matches no "
            "product); the data-quality scan then reports them to their owners",
        ),
    ] = False,
) -> None:
    """Load the Maven Analytics CRM Sales Opportunities data set (running it again creates nothing new)."""
    summary = maven.import_maven_crm(database(), directory, organization=org, as_is=as_is)
    for line in maven.summary_lines(summary):
        console.print(line, highlight=False, markup=False)


@reports_errors
def export(
    entity: Annotated[str, typer.Argument(help="What to export: accounts, contacts, leads, opportunities, …")],
    format_: Annotated[ExportFormat, typer.Option("--format", help="csv or xlsx")] = ExportFormat.CSV,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write ('-' for standard output)")
    ] = None,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="FIELD=VALUE or FIELD__OP=VALUE (as in the API), repeatable")
    ] = None,
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Export records to CSV (UTF-8 with BOM) or XLSX: the rows and fields the actor may see, with
    formula-like text neutralized."""
    db = database()
    actor = resolve_actor(db, resolve_organization(db, org), as_user, label="cli export")
    params = parse_pairs(filter_ or [], "--filter")
    record_type = exporting.exportable(entity)
    with db.reading(actor) as session:
        exporting.check_export(session, actor, record_type, params)
        if output is not None and str(output) == "-":
            count = exporting.export_records(
                session, actor, entity=entity, params=params, fmt=format_, out=sys.stdout.buffer
            )
            errors.print(f"exported {count} {entity}")
            return
        path = output or Path(exporting.export_file_name(entity, format_, utcnow().date()))
        with path.open("wb") as out:
            count = exporting.export_records(session, actor, entity=entity, params=params, fmt=format_, out=out)
    console.print(f"exported {count} {entity} to {path}", highlight=False)
