"""``closeloop cash``: the cash operators' commands (CN-3, 线索到回款) — run the daily collection job
(overdue marks, due-date reminders, overdue alerts) now, for one organization or all, and list
the overdue instalments. The same code as the worker's daily run and the /cash page."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from closeloop.cash import service as cash
from closeloop.cash.daily import DailyRun, run_daily
from closeloop.cli.common import console, database, fail, reports_errors, resolve_organization
from closeloop.core.clock import utcnow
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import Organization, OrganizationKind, User


def counted(number: int, noun: str) -> str:
    """``1 reminder``, ``2 reminders``, ``1,204 overdue instalments``."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


cash_app = typer.Typer(
    help="Lead to cash (线索到回款): collection reminders and overdue instalments.", no_args_is_help=True
)

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name (default: every one)")]


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"--as-of: '{text}' is not a day (YYYY-MM-DD)", 2) from None


def _organizations(db: Database, reference: str | None) -> list[Organization]:
    """The organization named by ``--org``, else every seller organization (partners keep no contracts)."""
    if reference:
        return [resolve_organization(db, reference)]
    with db.reading(None, system=True) as session:
        return list(
            session.scalars(
                select(Organization).where(Organization.kind == OrganizationKind.SELLER.value).order_by(Organization.id)
            )
        )


@cash_app.command("remind")
@reports_errors
def remind(
    org: OrgOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run as on this day (YYYY-MM-DD); default today")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what the run would do; change and send nothing")
    ] = False,
) -> None:
    """Run the daily collection job now: mark instalments overdue, remind owners of due dates within
    each instalment's reminder days, alert owners and their managers of overdue ones. Idempotent
    within a day (a second run reminds nobody twice); each organization in its own transaction."""
    on = _day(as_of) or utcnow().date()
    db = database()
    chosen = _organizations(db, org)
    if not chosen:
        raise fail("there is no organization yet: run 'closeloop demo' or 'closeloop org create NAME'")
    table = Table(title=f"Collection run · {on.isoformat()}{' · dry run (nothing changed)' if dry_run else ''}")
    for column in ("organization", "marked overdue", "reminded", "alerted", "notifications"):
        table.add_column(column, justify="left" if column == "organization" else "right")
    total = DailyRun()
    for organization in chosen:
        if dry_run:
            with db.writing(None, system=True) as session:  # rolled back: not committed
                run = run_daily(session, organization.id, on=on)
        else:
            with db.unit_of_work(None, system=True) as session:
                run = run_daily(session, organization.id, on=on)
        table.add_row(
            organization.slug,
            f"{run.marked_overdue:,}",
            f"{run.reminded:,}",
            f"{run.alerted:,}",
            f"{run.notifications:,}",
        )
        for name in ("marked_overdue", "reminded", "alerted", "notifications"):
            setattr(total, name, getattr(total, name) + getattr(run, name))
    console.print(table)
    verb = "would be" if dry_run else "were"
    console.print(
        f"{counted(total.reminded, 'reminder')} and {counted(total.alerted, 'overdue alert')} {verb} raised "
        f"({counted(total.notifications, 'notification')})"
    )


@cash_app.command("overdue")
@reports_errors
def overdue(
    org: OrgOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Overdue as on this day (YYYY-MM-DD)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many per organization")] = 200,
) -> None:
    """List the unpaid instalments past their due date, oldest first: contract, owner, due day, days
    late, amount due and collected so far (approved collections only)."""
    on = _day(as_of)
    db = database()
    table = Table(title="Overdue instalments" + (f" · as on {on.isoformat()}" if on else ""))
    for column in (
        "organization",
        "contract",
        "title",
        "owner",
        "instalment",
        "due on",
        "days late",
        "due",
        "collected",
    ):
        table.add_column(column, justify="right" if column in ("days late", "due", "collected") else "left")
    count = 0
    for organization in _organizations(db, org):
        actor = org_service.system_actor(organization.id, label="cli: cash overdue")
        with db.reading(actor) as session:
            lines = cash.overdue(session, actor, limit=limit, on=on)
            owner_ids = sorted({line.contract.owner_id for line in lines if line.contract.owner_id is not None})
            rows = session.execute(
                select(User.id, User.display_name).where(tenant_clause(organization.id, User), User.id.in_(owner_ids))
            )
            owners = {row[0]: str(row[1]) for row in rows}
        today = on or utcnow().date()
        for line in lines:
            instalment = line.instalment
            table.add_row(
                organization.slug,
                line.contract.number,
                line.contract.title,
                owners.get(line.contract.owner_id or 0, "—"),
                str(instalment.number),
                instalment.due_on.isoformat(),
                str((today - instalment.due_on).days),
                f"{instalment.amount:,.2f} {line.contract.currency}",
                f"{line.collected:,.2f}",
            )
            count += 1
    console.print(table)
    console.print(counted(count, "overdue instalment"))
