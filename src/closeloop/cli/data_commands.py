"""``closeloop import <entity> FILE``, ``closeloop import maven-crm DIR`` and ``closeloop export <entity>``.

Exit status: 0 when an import ran — even if some rows were invalid (they are listed, and were not
imported); 2 when the input cannot be used at all (unreadable file, unknown column or field, a
required field unmapped, a bad filter); 1 for anything else (such as a missing permission).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from closeloop.cli.common import (
    console,
    database,
    errors,
    fail,
    report_language,
    reports_errors,
    resolve_actor,
    resolve_organization,
)
from closeloop.core.clock import utcnow
from closeloop.core.i18n import N_, translations
from closeloop.core.messages import reason_text
from closeloop.integrations import exporting
from closeloop.integrations.exporting import ExportFormat
from closeloop.integrations.importing import mappings, maven
from closeloop.integrations.importing.custom import as_import_fields, custom_fields_for
from closeloop.integrations.importing.engine import run_import
from closeloop.integrations.importing.entities import ENTITIES
from closeloop.integrations.importing.fields import fields_of, suggest_mapping
from closeloop.integrations.importing.readers import read_table
from closeloop.integrations.importing.report import ImportReport, RowProblem

import_app = typer.Typer(help="Import records from CSV/XLSX files, or a known data set.", no_args_is_help=True)

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")]
AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (permissions, row scope and field masks apply)")
]
LangOption = Annotated[
    str | None,
    typer.Option(
        "--lang",
        help="zh or en: the language of the row report (default: CLOSELOOP_LANG or LANG, else the organization's)",
    ),
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


def _print_mapping(headers: list[str], mapping: dict[str, str], *, suggested: bool, locale: str = "en") -> None:
    gettext = translations(locale).gettext
    title = gettext(N_("Suggested mapping") if suggested else N_("Mapping"))
    table = Table(gettext(N_("column")), gettext(N_("field")), title=title)
    for header in headers:
        table.add_row(header, mapping.get(header, "[dim]" + escape(gettext(N_("(not imported)"))) + "[/]"))
    console.print(table)


def _summary(report: ImportReport, gettext: Callable[[str], str]) -> str:
    counts = {
        "total": report.total_rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "invalid": report.invalid,
    }
    if report.dry_run:
        text = N_(
            "Dry run: %(total)s rows: %(created)s to create, %(updated)s to update, "
            "%(unchanged)s unchanged, %(invalid)s invalid"
        )
    else:
        text = N_(
            "%(total)s rows: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, %(invalid)s invalid"
        )
    return gettext(text) % counts


def problem_line(problem: RowProblem, locale: str, *, warning: bool = False) -> str:
    """One row problem as the reader reads it: ``row 7, column 行业 ('x'): Enter a whole number.`` /
    ``第 7 行，列「行业」（'x'）：请输入整数。`` — the reason phrased as the web's import page phrases it."""
    gettext = translations(locale).gettext
    where = gettext(N_("row %(row)s")) % {"row": problem.row}
    if problem.column:
        where += gettext(N_(", column %(column)s")) % {"column": problem.column}
    if problem.value is not None:
        where += f" ({problem.value!r})"
    reason = reason_text(asdict(problem), locale)
    if warning:
        reason = gettext(N_("warning: %(reason)s")) % {"reason": reason}
    return gettext(N_("%(where)s: %(reason)s")) % {"where": where, "reason": reason}


def _print_report(report: ImportReport, report_path: Path | None, locale: str) -> None:
    gettext = translations(locale).gettext
    console.print(_summary(report, gettext), highlight=False)
    lines = [problem_line(problem, locale) for problem in report.problems]
    for line in lines[:SHOWN_PROBLEMS]:
        console.print(f"  {line}", highlight=False, markup=False)
    hidden = len(lines) - SHOWN_PROBLEMS + report.problems_omitted
    if hidden > 0:
        more = gettext(N_("… and %(count)s more problems")) % {"count": hidden}
        console.print(f"  {more}" + (gettext(N_(" (see the report file)")) if report_path else ""), highlight=False)
    for warning in report.warnings[:SHOWN_PROBLEMS]:
        console.print(f"  {problem_line(warning, locale, warning=True)}", highlight=False, markup=False)
    if len(report.warnings) > SHOWN_PROBLEMS:
        more = gettext(N_("… and %(count)s more warnings")) % {"count": len(report.warnings) - SHOWN_PROBLEMS}
        console.print(f"  {more}", highlight=False)
    if report.invalid:
        rows = gettext(
            N_("1 invalid row was not imported;")
            if report.invalid == 1
            else N_("%(count)s invalid rows were not imported;")
        ) % {"count": report.invalid}
        tail = N_("nothing was stored (dry run).") if report.dry_run else N_("the valid rows were imported.")
        console.print(f"{rows}{' ' if locale == 'en' else ''}{gettext(tail)}", highlight=False)
    elif report.dry_run:
        console.print(gettext(N_("Nothing was stored (dry run).")), highlight=False)
    if report_path is not None:
        report_path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(gettext(N_("report written to %(path)s")) % {"path": report_path}, highlight=False)


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
        lang: LangOption = None,
    ) -> None:
        db = database()
        organization = resolve_organization(db, org)
        locale = report_language(lang, organization)
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
            _print_mapping(table.headers, mapping, suggested=False, locale=locale)
        else:
            with db.reading(actor) as session:
                extra = as_import_fields(custom_fields_for(session, actor, entity))
            mapping = suggest_mapping(table.headers, entity, extra)
            if map_:
                mapping = overridden(mapping, parse_pairs(map_, "--map"))
            _print_mapping(table.headers, mapping, suggested=not map_, locale=locale)
        source = f"{table.format}" + (f", {table.encoding}" if table.encoding else "")
        heading = translations(locale).gettext(N_("%(file)s (%(source)s): %(count)s rows → %(entity)s of %(org)s"))
        console.print(
            heading
            % {
                "file": file.name,
                "source": source,
                "count": len(table.rows),
                "entity": entity,
                "org": organization.slug,
            },
            highlight=False,
            markup=False,
        )
        if dry_run:
            with db.reading(actor) as session:
                result = run_import(session, actor, entity=entity, table=table, mapping=mapping, dry_run=True)
        else:
            with db.unit_of_work(actor) as session:
                result = run_import(session, actor, entity=entity, table=table, mapping=mapping)
        _print_report(result, report, locale)

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
