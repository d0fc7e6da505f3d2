"""``closeloop demo``: what ``make run`` calls, and the benchmark tenant."""

from __future__ import annotations

from datetime import UTC, time, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.automation.models import Decision, PendingAction, Rule
from closeloop.cli.demo_commands import DEMO_RULES, demo_anchor
from closeloop.cli.main import app
from closeloop.core.clock import utcnow
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.tasks.models import Task
from closeloop.crm.tickets.models import Ticket
from closeloop.db.session import Database
from closeloop.demo.people import DEMO_PASSWORD
from closeloop.forecasting.models import BookingsForecastRow, BookingsSnapshot, WinProbabilityModel
from closeloop.forecasting.simulation import add_months
from closeloop.org.models import Organization
from tests.conftest import Backend
from tests.factories import Tenant

pytestmark = pytest.mark.committing

SIGN_INS = [
    ("demo.rep", "rep"),
    ("demo.manager", "manager"),
    ("demo.director", "director"),
    ("demo.sales_vp", "sales_vp"),
    ("demo.cfo", "cfo"),
    ("demo.it_director", "it_director"),
    ("demo.admin", "admin"),
    ("demo.dealer", "partner_user"),
    ("demo.dealer2", "partner_user"),
    ("demo.service", "partner_user"),
]


def table_cells(output: str) -> list[list[str]]:
    """The cells of every table row printed (with the empty edges of the row's border)."""
    return [[cell.strip() for cell in line.split("│")] for line in output.splitlines() if line.startswith("│")]


def sign_in_rows(output: str) -> list[tuple[str, str]]:
    """(username, role) of each row of the printed sign-in table that gives the demo password."""
    return [(cells[1], cells[2]) for cells in table_cells(output) if len(cells) > 4 and cells[3] == DEMO_PASSWORD]


def organizations(db: Database) -> int:
    with db.reading(None, system=True) as session:
        return session.scalar(select(func.count()).select_from(Organization)) or 0


def test_demo_if_empty_seeds_once_and_always_prints_the_sign_ins(
    cli: CliRunner, db: Database, backend: Backend
) -> None:
    if backend.is_postgres:
        # the command's logic does not depend on the database; seeding the demo on PostgreSQL is
        # tests/demo/test_seed.py's (a whole demo per backend here would cost minutes of the suite)
        pytest.skip("the demo command is exercised on SQLite; the seeding itself on both databases")
    first = cli.invoke(app, ["demo", "--if-empty"])
    second = cli.invoke(app, ["demo", "--if-empty"])
    again = cli.invoke(app, ["demo"])

    assert first.exit_code == 0, first.output
    assert sign_in_rows(first.stdout) == SIGN_INS
    assert "Sign in at http://127.0.0.1:8000 · API docs at http://127.0.0.1:8000/api/docs" in first.stdout
    assert second.exit_code == 0, second.output
    assert second.stdout.startswith("database already has data; skipping demo\n")
    assert sign_in_rows(second.stdout) == SIGN_INS
    assert again.exit_code == 1
    assert "An organization with slug 'demo' already exists" in again.stderr
    assert organizations(db) == 4
    # the bookings forecast as of the first of each of the last twelve months, computed from the demo
    # history, and today's: each of the twelve finished months has forecasts to compare with its bookings
    today = utcnow().date()
    with db.reading(None, system=True) as session:
        taken = list(
            session.execute(select(BookingsSnapshot.as_of, BookingsSnapshot.seed).order_by(BookingsSnapshot.as_of))
        )
        finished = session.scalars(
            select(BookingsForecastRow.period)
            .where(
                BookingsForecastRow.granularity == "month",
                BookingsForecastRow.dimension == "total",
                BookingsForecastRow.period_end <= today,
            )
            .distinct()
        ).all()
    this_month = today.replace(day=1)
    assert [as_of for as_of, _ in taken] == [add_months(this_month, -back) for back in range(12, 0, -1)] + [today]
    assert all(seed == as_of.toordinal() for as_of, seed in taken)
    assert len(finished) == 12
    # today's interval calibrated against the past forecasts of finished months: 12 − lead of them up
    # to three months ahead (every snapshot's horizon reaches that far); further only the snapshots
    # taken early in a quarter reach, too few to calibrate with
    with db.reading(None, system=True) as session:
        latest = session.scalar(select(BookingsSnapshot).order_by(BookingsSnapshot.as_of.desc()).limit(1))
        assert latest is not None
        leads = [item for item in latest.details["interval"]["leads"] if item["granularity"] == "month"]
    assert leads
    assert latest.details["interval"]["method"] == "split_conformal"
    for item in leads:
        if item["lead"] <= 3:
            assert item["pairs"] == 12 - item["lead"]
            assert item["applied"]
        else:
            assert item["pairs"] < 9
            assert not item["applied"]
    # and the win-probability model the weekly task would train, with its holdout figures
    with db.reading(None, system=True) as session:
        model = session.scalar(select(WinProbabilityModel))
    assert model is not None
    assert model.closed_deals > 1000
    assert {"auc", "brier", "stage_rate_auc", "stage_rate_brier"} <= set(model.metrics)
    # distributors' stock reports, so the forecast page has replenishment suggestions
    from closeloop.forecasting.actions import suggestions
    from closeloop.org import service as org_service

    seller = org_service.system_actor(model.organization_id)
    with db.reading(seller) as session:
        items = suggestions(session, seller)["items"]
    assert len(items) == 12
    assert any(item["suggested"] > 0 for item in items)
    _assert_a_decision_history(db, model.organization_id, first.stdout)


def _assert_a_decision_history(db: Database, organization_id: int, output: str) -> None:
    """The demo's rules and what their daily checks decided over its last week: decisions about its
    own records (each one exists, in the seller), made at the checks' hour (08:00 in Shanghai), the
    tasks made once their 30-second undo window ended, due three days after they are made (the rule's
    "3天内完成" is the task's due date, not a three-day hold)."""
    anchor = demo_anchor(utcnow().date())
    with db.reading(None, system=True) as session:
        rules = dict(session.execute(select(Rule.id, Rule.name).where(Rule.organization_id == organization_id)).all())
        decisions = list(session.scalars(select(Decision).where(Decision.organization_id == organization_id)))
        pending = list(session.scalars(select(PendingAction).where(PendingAction.organization_id == organization_id)))
        found = {
            kind: set(session.scalars(select(model.id).where(model.organization_id == organization_id)))
            for kind, model in (("opportunity", Opportunity), ("ticket", Ticket))
        }
    assert sorted(rules.values()) == sorted(text.rstrip("。") for text, _ in DEMO_RULES)
    assert f"automation: {len(decisions)} decisions over the last 7 days" in output
    assert {d.rule_id for d in decisions} == set(rules)  # every rule decided something
    assert all(d.record_id in found[d.record_type] for d in decisions)  # about real records of the seller
    assert {d.created_at.astimezone(UTC).time() for d in decisions} == {time(0, 0)}  # 08:00 in Shanghai
    assert {(anchor - d.created_at).days for d in decisions} <= set(range(7))
    assert {d.event_type for d in decisions} == {"schedule"}
    assert pending  # the task rule's actions wait in (or went through) the undo window
    assert {a.decision_id for a in pending} <= {d.id for d in decisions}
    made = {d.id: d.created_at for d in decisions}
    assert {(a.run_after - made[a.decision_id]).total_seconds() for a in pending} == {30.0}  # the default window
    assert all(a.status == "done" for a in pending if a.run_after <= anchor)  # made as the worker would
    assert [text for text, undo_seconds in DEMO_RULES if undo_seconds > 30] == []
    done = [a for a in pending if a.status == "done"]
    assert done
    with db.reading(None, system=True) as session:
        due = set(
            session.scalars(select(Task.due_on).where(Task.organization_id == organization_id, Task.title == "跟进"))
        )
    # each task made is due three days after the check that decided it (08:00 in Shanghai: the same date)
    assert {(made[a.decision_id] + timedelta(days=3)).date() for a in done} <= due


def test_demo_if_empty_leaves_a_database_with_other_organizations_alone(
    cli: CliRunner, db: Database, tenant: Tenant
) -> None:
    result = cli.invoke(app, ["demo", "--if-empty"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "database already has data; skipping demo\n"
    assert organizations(db) == 1


def test_demo_scale_builds_the_tenant_and_reports_rows_and_time(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["demo", "--scale", "500", "--org", "bench-cli"])
    counted = {cells[1]: cells[2] for cells in table_cells(result.stdout) if len(cells) == 4}

    assert result.exit_code == 0, result.output
    assert "building a scale tenant with 500 opportunities (seed 20261101)" in result.stdout
    assert "activities: 2,500 / 2,500 rows" in result.stdout
    assert counted["opportunities"] == "500"
    assert counted["activities"] == "2,500"
    assert "rows/s overall" in result.stdout
    assert [username for username, _ in sign_in_rows(result.stdout)] == [
        f"bench-cli.{role}" for role in ("rep", "manager", "director", "sales_vp", "cfo", "it_director", "admin")
    ]
    assert organizations(db) == 1
