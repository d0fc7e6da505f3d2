"""``closeloop``: serve, worker, migrate, demo, import, export, user, token, audit, funnel, quality, alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from typing import Annotated

import typer
from rich.table import Table

from closeloop import __version__
from closeloop.cli import (
    alert_commands,
    cash_commands,
    compliance_commands,
    data_commands,
    demo_commands,
    forecast_commands,
    knowledge_commands,
    pools_commands,
    quality_commands,
    rule_commands,
    target_commands,
)
from closeloop.cli.common import (
    console,
    database,
    errors,
    fail,
    reports_errors,
    resolve_actor,
    resolve_organization,
)
from closeloop.config import settings
from closeloop.core.clock import utcnow
from closeloop.crm.funnel.service import FunnelFilters, measure_funnel
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import OrganizationKind, User

app = typer.Typer(help="Closeloop: closed-loop sales management.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Users of an organization.", no_args_is_help=True)
token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations (tenants and partners).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(org_app, name="org")
app.add_typer(data_commands.import_app, name="import")
app.add_typer(quality_commands.quality_app, name="quality")
app.add_typer(alert_commands.alerts_app, name="alerts")
app.add_typer(rule_commands.rules_app, name="rules")
app.add_typer(compliance_commands.compliance_app, name="compliance")
app.add_typer(knowledge_commands.knowledge_app, name="knowledge")
app.add_typer(pools_commands.pools_app, name="pools")
app.add_typer(cash_commands.cash_app, name="cash")
app.add_typer(forecast_commands.forecast_app, name="forecast")
app.add_typer(target_commands.targets_app, name="targets")
app.command("export")(data_commands.export)
app.command("demo")(demo_commands.demo)

OrgOption = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")]
AsOption = Annotated[str | None, typer.Option("--as", help="Act as this user (row scope and field masks apply)")]


@app.command()
def version(
    detail: Annotated[
        bool, typer.Option("--detail", help="Also say how the compliance checker's compiled parts run here")
    ] = False,
) -> None:
    """Print the version (with ``--detail``, which compiled parts are in use)."""
    console.print(__version__)
    if detail:
        from closeloop.assistant.compliance.matcher import plain_path_implementation
        from closeloop.assistant.compliance.prefilter import available, engine_in_use

        console.print(f"compliance plain path: {plain_path_implementation()}")
        console.print(f"compliance prefilter scan: {engine_in_use() if available() else 'none (no hyperscan)'}")


@app.command()
def migrate(revision: Annotated[str, typer.Option(help="Target revision")] = "head") -> None:
    """Create or upgrade the database schema."""
    from closeloop.db.migrate import upgrade

    settings.protect_var_dir()
    upgrade(settings.effective_database_url, revision)
    console.print(f"database at {settings.effective_database_url.split('@')[-1]} is at {revision}")


def _stop_with_parent() -> None:
    """In the worker's process, before it runs: the kernel sends it SIGTERM if ``serve`` dies, even
    by ``kill -9`` (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = settings.host,
    port: Annotated[int, typer.Option(help="Port")] = settings.port,
    with_worker: Annotated[
        bool, typer.Option("--with-worker/--no-worker", help="Start a background worker too")
    ] = True,
    workers: Annotated[int, typer.Option(help="Web worker processes")] = 1,
) -> None:
    """Serve the web workspace and the API (and, by default, one background worker)."""
    import uvicorn

    settings.protect_var_dir()
    worker: subprocess.Popen[bytes] | None = None
    if with_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "closeloop.cli.main", "worker"],
            env=os.environ.copy(),
            preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
        )
        console.print(f"background worker started (pid {worker.pid})")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: this handler turns it
    # into an exit that runs the ``finally`` below (stopping the worker) instead of killing us
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    shown = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104 - compared, not bound
    console.print(f"Closeloop is serving at [bold]{shown}[/] · API docs at {shown}/api/docs · Ctrl-C to stop")
    try:
        uvicorn.run(
            "closeloop.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            log_level="info",
        )
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


worker_app = typer.Typer(
    help="Run a background worker (a Huey consumer) until interrupted; `closeloop worker health` probes one.",
    invoke_without_command=True,
)
app.add_typer(worker_app, name="worker")


@worker_app.callback()
def worker(
    context: typer.Context,
    workers: Annotated[int, typer.Option(help="Worker threads")] = 2,
) -> None:
    """Run a background worker (a Huey consumer) until interrupted."""
    if context.invoked_subcommand is not None:
        return
    from huey.consumer import Consumer

    settings.protect_var_dir()
    import closeloop.worker.tasks  # registers the tasks
    from closeloop.worker.queue import huey

    closeloop.worker.tasks.register_automation()

    backend = "Redis" if settings.redis_url else f"SQLite ({settings.var_dir / 'queue.db'})"
    console.print(f"worker: {workers} threads, queue on {backend}")
    Consumer(huey, workers=workers, worker_type="thread", periodic=True, check_worker_health=True).run()


@worker_app.command("health")
@reports_errors
def worker_health(
    max_age: Annotated[
        int, typer.Option(min=1, help="Seconds since the last heartbeat after which the worker counts as down")
    ] = 150,
) -> None:
    """Whether a worker takes tasks from this queue: exit 0 when one noted a heartbeat (each minute)
    within ``--max-age`` seconds, 1 otherwise (for a container's or a supervisor's health check)."""
    from closeloop.worker.tasks import last_heartbeat

    beat = last_heartbeat()
    if beat is None:
        console.print("worker: no heartbeat on this queue yet (is `closeloop worker` running with the same settings?)")
        raise typer.Exit(1)
    age = max(0.0, (utcnow() - beat.at).total_seconds())
    fresh = age <= max_age
    said = f"worker: last heartbeat {age:.0f} s ago, from {beat.host} (pid {beat.pid})"
    console.print(said if fresh else f"{said}: older than {max_age} s, so no worker is taking tasks")
    raise typer.Exit(0 if fresh else 1)


@org_app.command("create")
@reports_errors
def org_create(
    name: Annotated[str, typer.Argument(help="Display name")],
    kind: Annotated[
        OrganizationKind, typer.Option(help="seller, dealer, service_provider, logistics, supplier")
    ] = OrganizationKind.SELLER,
    partner_of: Annotated[str | None, typer.Option(help="For a partner: the seller it works with")] = None,
    slug: Annotated[str | None, typer.Option(help="URL-safe short name")] = None,
) -> None:
    """Create an organization."""
    db = database()
    partner_of_id = resolve_organization(db, partner_of).id if partner_of else None
    with db.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(
            session, name=name, kind=kind, partner_of_id=partner_of_id, slug=slug, label="cli"
        )
        console.print(f"created {organization.kind} organization {organization.slug} (id {organization.id})")


@org_app.command("list")
def org_list() -> None:
    """List organizations."""
    from sqlalchemy import select

    from closeloop.org.models import Organization

    with database().reading(None, system=True) as session:
        table = Table("id", "slug", "name", "kind", "partner of")
        for organization in session.scalars(select(Organization).order_by(Organization.id)):
            table.add_row(
                str(organization.id),
                organization.slug,
                organization.name,
                organization.kind,
                str(organization.partner_of_id or ""),
            )
    console.print(table)


@user_app.command("add")
@reports_errors
def user_add(
    username: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[Role, typer.Option(help="rep, manager, director, sales_vp, cfo, it_director, partner_user, admin")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the username)")] = None,
    email: Annotated[str | None, typer.Option(help="Email")] = None,
    manager: Annotated[str | None, typer.Option(help="Username of their manager")] = None,
    region: Annotated[str | None, typer.Option(help="Region name (created if new)")] = None,
    password: Annotated[str | None, typer.Option(help="Password (asked for when omitted)")] = None,
    org: OrgOption = None,
) -> None:
    """Add a user to an organization."""
    from sqlalchemy import select

    db = database()
    organization = resolve_organization(db, org)
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    actor = org_service.system_actor(organization.id, label="cli")
    with db.unit_of_work(actor) as session:
        manager_id = None
        if manager:
            manager_id = session.scalar(
                select(User.id).where(tenant_clause(organization.id, User), User.username == manager)
            )
            if manager_id is None:
                raise fail(f"no user '{manager}' in {organization.slug}")
        region_id = org_service.ensure_region(session, actor, name=region).id if region else None
        user = org_service.create_user(
            session,
            actor,
            data=org_service.NewUser(
                username=username,
                display_name=name or username,
                role=role,
                password=password,
                email=email,
                manager_id=manager_id,
                region_id=region_id,
            ),
        )
        console.print(f"added {user.username} ({user.role}) to {organization.slug}")


@user_app.command("check")
@reports_errors
def user_check(org: OrgOption = None) -> None:
    """List partner users left in a seller's own organization (exit 1 when there are any).

    Such a user was made before the role was refused there; they may do nothing until an
    administrator gives them another role (the users page) or deactivates them and adds them to
    the partner's organization (``closeloop user add --org <partner>``).
    """
    db = database()
    organization_id = resolve_organization(db, org).id if org else None
    with db.reading(None, system=True) as session:
        found = org_service.misplaced_partner_users(session, organization_id)
        rows = [(organization.slug, user.username, user.display_name, user.is_active) for user, organization in found]
    if not rows:
        console.print("no partner user is in a seller's own organization")
        return
    table = Table("organization", "username", "name", "active")
    for slug, username, display_name, active in rows:
        table.add_row(slug, username, display_name, "yes" if active else "no")
    console.print(table)
    console.print(
        f"{len(rows)} partner user(s) in a seller's own organization: they may do nothing until given another role "
        "(Settings › Users and roles) or moved to the partner's organization (closeloop user add --org <partner>)"
    )
    raise typer.Exit(1)


@token_app.command("create")
@reports_errors
def token_create(
    username: Annotated[str, typer.Argument(help="Whose token")],
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    days: Annotated[int, typer.Option(min=0, help="Days until it expires (0 = never)")] = 90,
) -> None:
    """Issue a personal API token and print its secret (shown only once)."""
    from sqlalchemy import select

    db = database()
    with db.unit_of_work(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise fail(f"no user '{username}'")
        actor = org_service.system_actor(user.organization_id, label="cli")
        expires_at = utcnow() + timedelta(days=days) if days > 0 else None
        _, secret = org_service.issue_token(session, actor, user=user, name=name, expires_at=expires_at)
    typer.echo(secret)


@audit_app.command("verify")
@reports_errors
def audit_verify(
    org: OrgOption = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH from an earlier run's output (needs --org): the chain must still pass through it",
        ),
    ] = None,
) -> None:
    """Check every entry of the audit chain; exit 1 and list the breaks if any entry was edited,
    removed or reordered. Each intact chain's line names its head (sequence number and hash): keep it
    with the backups and give it back as ``--anchor`` to prove the chain was not rewritten since."""
    from sqlalchemy import select

    from closeloop.org.models import Organization

    anchored: tuple[int, str] | None = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not org or not seq.isdigit() or len(digest) != 64:
            raise fail("--anchor takes SEQ:HASH as an intact run printed it, with --org", 2)
        anchored = (int(seq), digest.lower())
    db = database()
    with db.reading(None, system=True) as session:
        if org:
            organizations = [org_service.find_organization(session, org)]
        else:
            organizations = list(session.scalars(select(Organization).order_by(Organization.id)))
    broken = 0
    for organization in organizations:
        with db.reading(None, system=True) as session:
            problems = list(audit.verify(session, organization.id))
            head = audit.head(session, organization.id)
            if anchored is not None and not problems:
                problems = list(audit.check_anchor(session, organization.id, *anchored))
        if problems:
            broken += len(problems)
            for problem in problems:
                errors.print(
                    f"{organization.slug}: {problem.kind} at entry {problem.seq}: {problem.detail}", highlight=False
                )
        else:
            kept = f"; passes through the anchor {anchored[0]}" if anchored else ""
            line = f"{organization.slug}: audit chain intact{kept}; head {head[0]}:{head[1]}"
            console.print(line, highlight=False, soft_wrap=True)
    if broken:
        raise typer.Exit(1)


@app.command()
@reports_errors
def funnel(
    org: OrgOption = None,
    as_user: AsOption = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD")] = None,
    owner: Annotated[int | None, typer.Option(help="Owner user id")] = None,
    region: Annotated[int | None, typer.Option(help="Region id")] = None,
    product_line: Annotated[int | None, typer.Option(help="Product line id")] = None,
    industry: Annotated[str | None, typer.Option(help="Industry")] = None,
) -> None:
    """Print the closed-loop funnel: the same numbers as GET /api/v1/funnel."""
    db = database()
    organization = resolve_organization(db, org)
    actor = resolve_actor(db, organization, as_user, label="cli")
    try:
        filters = FunnelFilters(
            start=date.fromisoformat(start) if start else None,
            end=date.fromisoformat(end) if end else None,
            owner_id=owner,
            region_id=region,
            product_line_id=product_line,
            industry=industry,
        )
    except ValueError as error:
        raise fail(f"bad date: {error}", 2) from None
    with db.reading(actor) as session:
        result = measure_funnel(session, actor, filters=filters)
    table = Table("step", "count", "from previous", "conversion", "median days", title=f"Funnel · {organization.name}")
    for step in result.steps:
        table.add_row(
            step.step,
            f"{step.count:,}",
            "" if step.from_previous is None else f"{step.from_previous:,}",
            "" if step.conversion_rate is None else f"{step.conversion_rate:.1%}",
            "" if step.median_days_from_previous is None else f"{step.median_days_from_previous:g}",
        )
    console.print(table)


if __name__ == "__main__":
    app()
