"""Loading the Maven Analytics "CRM Sales Opportunities" data set into an organization.

The data set (MavenTech, a fictitious computer-hardware seller, 2016-10 .. 2017-12) has four
tables: ``accounts.csv``, ``products.csv``, ``sales_teams.csv`` and ``sales_pipeline.csv``. They
become: regions (the regional offices), users (managers, and sales agents reporting to them —
without passwords), product lines (the product series), products, accounts and opportunities with
their stage history, all through the generic import engine, so every record is validated and
audited like any other import. Running it again changes nothing.

Its quirks, handled and counted in the summary:

* ``GTXPro`` in the pipeline is ``GTX Pro`` in the product list (names are matched ignoring
  spaces and case);
* the sector ``technolgy`` is a typo for ``technology``, and the office location ``Philipines``
  for ``Philippines``;
* 1,425 open deals have no account, and the 500 deals still in *Prospecting* have no engage date:
  they are opened on the data set's last date (its snapshot), 2017-12-31;
* revenue is in millions of US dollars; a lost or open deal has no value, so its amount is the
  product's list price (a won deal's is its close value); lost deals carry no reason in the data;
* stages map Prospecting → prospecting, Engaging → qualification, Won → won, Lost → lost; the
  engage date starts *qualification* (the time spent prospecting before it is unknown);
* files keep their original CRLF line endings.

With ``as_is`` the typos are kept and product names are matched exactly: a name the product list
does not hold (``GTXPro``) becomes a product of its own, without series or price, as a legacy CRM
with free-text products would hold it. Nothing is corrected on the way in; the data-quality scan
(``closeloop quality scan``) then finds the quirks and hands them to the records' owners.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError
from closeloop.crm.enums import Stage
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.permissions import Role
from closeloop.integrations.importing.engine import run_import
from closeloop.integrations.importing.entities import HistoryStep, ImportOptions
from closeloop.integrations.importing.errors import UnreadableFile
from closeloop.integrations.importing.readers import Cell, SourceRow, SourceTable, read_table
from closeloop.integrations.importing.report import ImportReport, RowProblem
from closeloop.org import service as org_service
from closeloop.org.models import Organization, OrganizationKind, Region, User

ORGANIZATION_NAME = "MavenTech"
ORGANIZATION_SLUG = "maventech"
CURRENCY = "USD"
LOST_REASON = "not recorded in source data"
FILES = ("accounts.csv", "products.csv", "sales_teams.csv", "sales_pipeline.csv")
STAGES = {
    "Prospecting": Stage.PROSPECTING,
    "Engaging": Stage.QUALIFICATION,
    "Won": Stage.WON,
    "Lost": Stage.LOST,
}
SECTOR_FIXES = {"technolgy": "technology"}
COUNTRY_FIXES = {"Philipines": "Philippines"}
_MILLION = Decimal(1_000_000)


@dataclass
class MavenSummary:
    """What the import created, found unchanged, or could not load, and which quirks it handled."""

    organization: str
    organization_id: int
    organization_created: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quirks: list[str] = field(default_factory=list)
    problems: list[tuple[str, RowProblem]] = field(default_factory=list)

    def count(self, entity: str, *, created: int = 0, updated: int = 0, unchanged: int = 0, invalid: int = 0) -> None:
        self.counts[entity] = {"created": created, "updated": updated, "unchanged": unchanged, "invalid": invalid}

    def add_report(self, entity: str, file_name: str, report: ImportReport) -> None:
        self.count(
            entity,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            invalid=report.invalid,
        )
        self.problems.extend((file_name, problem) for problem in report.problems)

    @property
    def created(self) -> int:
        return sum(c["created"] for c in self.counts.values())


def _normalized(name: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name)).casefold()


def _read(directory: Path) -> dict[str, list[dict[str, str]]]:
    """Each file's rows as ``{header: text}``, keyed by file name (row numbers under ``_row``)."""
    if not directory.is_dir():
        raise UnreadableFile(f"{directory} is not a directory holding the Maven CRM files ({', '.join(FILES)})")
    tables: dict[str, list[dict[str, str]]] = {}
    for name in FILES:
        path = directory / name
        if not path.exists():
            raise UnreadableFile(f"{path} is missing (the Maven CRM data set has {', '.join(FILES)})")
        table = read_table(path)
        rows = []
        for row in table.rows:
            record = {header: str(cell or "").strip() for header, cell in zip(table.headers, row.cells, strict=False)}
            record["_row"] = str(row.number)
            rows.append(record)
        tables[name] = rows
    return tables


def _table(name: str, headers: list[str], rows: list[tuple[int, list[Cell]]]) -> SourceTable:
    return SourceTable(name, headers, [SourceRow(number, tuple(cells)) for number, cells in rows], "memory")


def _day(text: str) -> datetime | None:
    return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC) if text else None


def maven_stage_history(stage: Stage, opened_at: datetime, closed_at: datetime | None) -> list[HistoryStep]:
    """Prospecting → (engage date) qualification → (close date) won / lost. How long a deal was
    prospected before its engage date is not in the data, so that duration is left unknown."""
    steps = [HistoryStep(None, Stage.PROSPECTING, opened_at, None)]
    if stage is Stage.PROSPECTING:
        return steps
    steps.append(HistoryStep(Stage.PROSPECTING, Stage.QUALIFICATION, opened_at, None))
    if stage.is_closed and closed_at is not None:
        duration = max(int((closed_at - opened_at).total_seconds()), 0)
        steps.append(HistoryStep(Stage.QUALIFICATION, stage, closed_at, duration))
    return steps


def _username(display_name: str, taken: set[str], slug: str) -> str:
    base = re.sub(r"[^a-z0-9.-]+", ".", display_name.lower()).strip(".-") or "user"
    for candidate in (base, f"{base}.{slug}"):
        if candidate not in taken:
            return candidate
    suffix = 2
    while f"{base}.{slug}{suffix}" in taken:
        suffix += 1
    return f"{base}.{slug}{suffix}"


def resolve_organization(database: Database, reference: str | None) -> tuple[Organization, bool]:
    """The organization named by ``reference``, or MavenTech (created the first time)."""
    with database.unit_of_work(None, system=True) as session:
        if reference:
            return org_service.find_organization(session, reference), False
        existing = session.scalar(select(Organization).where(Organization.slug == ORGANIZATION_SLUG))
        if existing is not None:
            return existing, False
        organization = org_service.create_organization(
            session,
            name=ORGANIZATION_NAME,
            kind=OrganizationKind.SELLER,
            slug=ORGANIZATION_SLUG,
            default_currency=CURRENCY,
            default_locale="en",
            label="maven-crm import",
        )
        return organization, True


def import_maven_crm(
    database: Database, directory: Path, *, organization: str | None = None, as_is: bool = False
) -> MavenSummary:
    """Load the data set in ``directory`` into ``organization`` (default: MavenTech), in one transaction;
    with ``as_is``, without correcting its quirks."""
    tables = _read(directory)
    org, created = resolve_organization(database, organization)
    actor = org_service.system_actor(org.id, label="maven-crm import")
    summary = MavenSummary(org.slug, org.id, created)
    with database.unit_of_work(actor) as session:
        _load(session, actor, tables, summary, org.slug, as_is=as_is)
    return summary


def _unlisted_products(pipeline: list[dict[str, str]], products: list[dict[str, str]]) -> list[dict[str, str]]:
    """Products the pipeline names that the product list does not hold, as written (for ``as_is``)."""
    listed = {p["product"] for p in products}
    first_row: dict[str, str] = {}
    for deal in pipeline:
        first_row.setdefault(deal["product"], deal["_row"])
    return [
        {"product": name, "series": "", "sales_price": "", "_row": first_row[name]}
        for name in sorted(set(first_row) - listed)
    ]


def _load(
    session: Session,
    actor: Actor,
    tables: Mapping[str, list[dict[str, str]]],
    summary: MavenSummary,
    slug: str,
    *,
    as_is: bool = False,
) -> None:
    teams = tables["sales_teams.csv"]
    users = _load_people(session, actor, teams, summary, slug)
    products = tables["products.csv"]
    if as_is:
        unlisted = _unlisted_products(tables["sales_pipeline.csv"], products)
        products = [*products, *unlisted]
        summary.quirks.extend(
            f"as is: product '{p['product']}' is not in the product list; kept as a product of its own"
            for p in unlisted
        )
    lines = sorted({row["series"] for row in products if row["series"]})
    summary.add_report(
        "product_lines",
        "products.csv",
        run_import(
            session,
            actor,
            entity="product_lines",
            table=_table("products.csv", ["name"], [(index + 2, [line]) for index, line in enumerate(lines)]),
            mapping={"name": "name"},
        ),
    )
    summary.add_report(
        "products",
        "products.csv",
        run_import(
            session,
            actor,
            entity="products",
            table=_table(
                "products.csv",
                ["name", "product_line", "list_price", "currency"],
                [(int(p["_row"]), [p["product"], p["series"], p["sales_price"], CURRENCY]) for p in products],
            ),
            mapping={name: name for name in ("name", "product_line", "list_price", "currency")},
        ),
    )
    summary.add_report(
        "accounts", "accounts.csv", _load_accounts(session, actor, tables["accounts.csv"], summary, as_is=as_is)
    )
    summary.add_report(
        "opportunities",
        "sales_pipeline.csv",
        _load_opportunities(session, actor, tables["sales_pipeline.csv"], products, users, summary, as_is=as_is),
    )


def _load_people(
    session: Session, actor: Actor, teams: list[dict[str, str]], summary: MavenSummary, slug: str
) -> dict[str, int]:
    """Regions from the regional offices; managers (role manager) and agents (role rep, reporting to
    their manager), matched by display name so that a second run creates no one."""
    offices = sorted({row["regional_office"] for row in teams})
    existing_regions = set(session.scalars(select(Region.name).where(tenant_clause(actor.organization_id, Region))))
    region_ids = {office: org_service.ensure_region(session, actor, name=office).id for office in offices}
    summary.count(
        "regions",
        created=len(set(offices) - existing_regions),
        unchanged=len(set(offices) & existing_regions),
    )
    people = {
        user.display_name: user.id
        for user in session.scalars(select(User).where(tenant_clause(actor.organization_id, User)))
    }
    taken = set(session.scalars(select(User.username)))
    manager_region = {row["manager"]: row["regional_office"] for row in teams}
    created = unchanged = 0
    plan: list[tuple[str, Role, str | None, str]] = [
        (manager, Role.MANAGER, None, office) for manager, office in sorted(manager_region.items())
    ]
    plan += [(row["sales_agent"], Role.REP, row["manager"], row["regional_office"]) for row in teams]
    for name, role, manager, office in plan:
        if name in people:
            unchanged += 1
            continue
        username = _username(name, taken, slug)
        taken.add(username)
        user = org_service.create_user(
            session,
            actor,
            data=org_service.NewUser(
                username=username,
                display_name=name,
                role=role,
                manager_id=people[manager] if manager else None,
                region_id=region_ids[office],
                locale="en",
            ),
        )
        people[name] = user.id
        created += 1
    summary.count("users", created=created, unchanged=unchanged)
    summary.quirks.append(
        f"{len(manager_region)} managers and {len(teams)} sales agents became users (managers' regions are "
        "their agents' regional office); they have no password until one is set"
    )
    return people


def _load_accounts(
    session: Session, actor: Actor, accounts: list[dict[str, str]], summary: MavenSummary, *, as_is: bool = False
) -> ImportReport:
    sectors: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    rows: list[tuple[int, list[Cell]]] = []
    for account in accounts:
        sector = account["sector"]
        if sector in SECTOR_FIXES:
            sectors[sector] += 1
            sector = sector if as_is else SECTOR_FIXES[sector]
        country = account["office_location"]
        if country in COUNTRY_FIXES:
            countries[country] += 1
            country = country if as_is else COUNTRY_FIXES[country]
        revenue = Decimal(account["revenue"]) * _MILLION if account["revenue"] else None
        rows.append(
            (
                int(account["_row"]),
                [
                    account["account"],
                    sector,
                    str(revenue) if revenue is not None else "",
                    account["employees"],
                    country,
                    account["subsidiary_of"],
                    account["year_established"],
                    CURRENCY,
                ],
            )
        )
    done = "kept (as is) instead of" if as_is else "corrected to"
    for typo, count in sorted(sectors.items()):
        summary.quirks.append(f"sector '{typo}' {done} '{SECTOR_FIXES[typo]}' on {count} accounts")
    for typo, count in sorted(countries.items()):
        summary.quirks.append(f"office location '{typo}' {done} '{COUNTRY_FIXES[typo]}' on {count} account")
    summary.quirks.append("revenue (millions of USD) stored as annual_revenue in USD; subsidiary_of as parent account")
    headers = [
        "name",
        "industry",
        "annual_revenue",
        "employees",
        "country",
        "parent_account",
        "year_established",
        "currency",
    ]
    return run_import(
        session,
        actor,
        entity="accounts",
        table=_table("accounts.csv", headers, rows),
        mapping={name: name for name in headers},
    )


def _load_opportunities(
    session: Session,
    actor: Actor,
    pipeline: list[dict[str, str]],
    products: list[dict[str, str]],
    users: Mapping[str, int],
    summary: MavenSummary,
    *,
    as_is: bool = False,
) -> ImportReport:
    catalogue = {(p["product"] if as_is else _normalized(p["product"])): p for p in products}
    snapshot = max(max(r["engage_date"], r["close_date"]) for r in pipeline)
    renamed: Counter[tuple[str, str]] = Counter()
    unknown_agents = sorted({r["sales_agent"] for r in pipeline} - set(users))
    if unknown_agents:
        raise DomainError(f"sales_pipeline.csv names agents missing from sales_teams.csv: {', '.join(unknown_agents)}")
    counts: Counter[str] = Counter()
    rows: list[tuple[int, list[Cell]]] = []
    for deal in pipeline:
        product = catalogue.get(deal["product"] if as_is else _normalized(deal["product"]))
        if product is None:
            raise DomainError(f"sales_pipeline.csv row {deal['_row']}: unknown product '{deal['product']}'")
        if product["product"] != deal["product"]:
            renamed[(deal["product"], product["product"])] += 1
        stage = STAGES.get(deal["deal_stage"])
        if stage is None:
            raise DomainError(f"sales_pipeline.csv row {deal['_row']}: unknown deal stage '{deal['deal_stage']}'")
        counts[deal["deal_stage"]] += 1
        if stage is Stage.WON:
            amount = deal["close_value"]
        else:
            amount = product["sales_price"]
            counts["list price"] += 1
        opened = deal["engage_date"]
        if not opened:
            opened = snapshot
            counts["no engage date"] += 1
        account = deal["account"]
        if not account:
            counts["no account"] += 1
        name = f"{account} · {product['product']}" if account else f"{product['product']} (no account)"
        rows.append(
            (
                int(deal["_row"]),
                [
                    deal["opportunity_id"],
                    name,
                    deal["sales_agent"],
                    account,
                    product["product"],
                    product["series"],
                    stage.value,
                    amount,
                    CURRENCY,
                    _day(opened),
                    _day(deal["close_date"]),
                    LOST_REASON if stage is Stage.LOST else "",
                ],
            )
        )
    for (written, meant), count in sorted(renamed.items()):
        summary.quirks.append(f"product '{written}' read as '{meant}' on {count} deals")
    summary.quirks.extend(
        [
            f"deal stages: Prospecting → prospecting ({counts['Prospecting']}), Engaging → qualification "
            f"({counts['Engaging']}), Won → won ({counts['Won']}), Lost → lost ({counts['Lost']})",
            f"{counts['no account']} open deals have no account and were imported without one",
            f"{counts['no engage date']} prospecting deals have no engage date; opened on the data set's last "
            f"date, {snapshot}",
            f"amount: the close value of won deals; the product's list price for {counts['list price']} lost or "
            "open deals (the data set records no value for them)",
            f"lost reason '{LOST_REASON}' on {counts['Lost']} lost deals",
            "stage history: prospecting at the engage date, qualification then (time prospecting unknown), "
            "won or lost at the close date",
        ]
    )
    headers = [
        "external_ref",
        "name",
        "owner",
        "account",
        "product",
        "product_line",
        "stage",
        "amount",
        "currency",
        "opened_at",
        "closed_at",
        "lost_reason",
    ]
    return run_import(
        session,
        actor,
        entity="opportunities",
        table=_table("sales_pipeline.csv", headers, rows),
        mapping={name: name for name in headers},
        options=ImportOptions(stage_history=maven_stage_history),
    )


def summary_lines(summary: MavenSummary) -> list[str]:
    """The summary as text: one line per entity, then the quirks."""
    lines = [
        f"organization {summary.organization} (id {summary.organization_id})"
        + (" created" if summary.organization_created else "")
    ]
    for entity, counts in summary.counts.items():
        lines.append(
            f"{entity}: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['invalid']} invalid"
        )
    lines.append("quirks handled:")
    lines.extend(f"  - {quirk}" for quirk in summary.quirks)
    for file_name, problem in summary.problems[:50]:
        lines.append(f"  ! {file_name} row {problem.row} {problem.column or ''}: {problem.reason}")
    return lines


def as_dict(summary: MavenSummary) -> dict[str, Any]:
    return {
        "organization": summary.organization,
        "organization_id": summary.organization_id,
        "organization_created": summary.organization_created,
        "counts": summary.counts,
        "quirks": summary.quirks,
        "problems": [{"file": f, **problem.__dict__} for f, problem in summary.problems],
    }
