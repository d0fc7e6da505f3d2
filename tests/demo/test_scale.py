"""``closeloop demo --scale N`` at a small N: the proportions, the links between records, the API on top."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text

from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import Stage
from closeloop.crm.funnel.service import FunnelFilters, measure_funnel
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.orders.models import Order
from closeloop.db.scope import within_organization
from closeloop.db.session import Database
from closeloop.demo import bulk
from closeloop.demo.people import DEMO_PASSWORD
from closeloop.demo.scale import BULK_TABLES, ScaleCounts, scale_teams, seed_scale
from closeloop.demo.world import ANCHOR
from closeloop.governance.audit import service as audit
from closeloop.org import service as org_service
from tests.apps import client

__all__ = ["client"]

pytestmark = pytest.mark.committing


def test_a_scale_tenant_has_the_promised_sizes_and_proportions(db: Database) -> None:
    result = seed_scale(db, opportunities=2_000)
    counts = result.counts

    assert result.slug == "demo-scale-2000"
    assert [counts[name] for name in ("opportunities", "accounts", "contacts", "leads", "activities", "tickets")] == [
        2_000,
        400,
        1_200,
        1_000,
        10_000,
        100,
    ]
    assert counts["opportunity_product_lines"] == 2_000
    assert 2.5 * 2_000 < counts["stage_changes"] < 4 * 2_000
    assert counts["orders"] == counts["order_lines"]
    assert counts["referrals"] > 0
    with db.reading(None, system=True) as session:
        for name in bulk.TABLES:
            model = bulk.MODELS[name]
            found = session.scalar(
                select(func.count()).select_from(within_organization(result.organization_id, model).subquery())
            )
            assert found == counts[name], name


def test_scale_records_link_up_like_the_normal_demo(db: Database) -> None:
    result = seed_scale(db, opportunities=2_000, slug="bench")
    organization_id = result.organization_id
    with db.reading(None, system=True) as session:
        opportunities = {o.id: o for o in session.scalars(within_organization(organization_id, Opportunity))}
        leads = {lead.id: lead for lead in session.scalars(within_organization(organization_id, Lead))}
        orders = list(session.scalars(within_organization(organization_id, Order)))
        first_moves = session.scalars(
            within_organization(organization_id, StageChange).where(StageChange.from_stage.is_(None))
        ).all()
        problems = list(audit.verify(session, organization_id))
    converted = {lead.id: lead for lead in leads.values() if lead.converted_opportunity_id is not None}
    from_leads = [(o, o.source_lead_id) for o in opportunities.values() if o.source_lead_id is not None]
    first_orders = Counter(order.opportunity_id for order in orders if order.opportunity_id is not None)

    assert len(from_leads) == len(converted) > 0
    assert all(converted[lead_id].converted_opportunity_id == o.id for o, lead_id in from_leads)
    assert all(converted[lead_id].converted_account_id == o.account_id for o, lead_id in from_leads)
    assert sorted(move.opportunity_id for move in first_moves) == sorted(opportunities)
    assert set(first_orders) == {i for i, o in opportunities.items() if o.stage == Stage.WON}
    assert set(first_orders.values()) == {1}
    assert any(order.opportunity_id is None for order in orders)
    assert {o.stage for o in opportunities.values()} == set(Stage)
    assert problems == []


def test_the_loaded_tables_keep_every_index_of_the_models(db: Database) -> None:
    seed_scale(db, opportunities=500)
    inspector = inspect(db.write_engine)
    for name in BULK_TABLES:
        present = {index["name"] for index in inspector.get_indexes(name)}
        expected = {index.name for index in bulk.table(name).indexes}
        assert expected <= present, name


def test_stored_timestamps_compare_correctly_in_date_filters(db: Database) -> None:
    result = seed_scale(db, opportunities=2_000)
    actor = org_service.system_actor(result.organization_id)
    start, end = date(2025, 6, 1), date(2026, 3, 31)
    with db.reading(actor) as session:
        funnel = measure_funnel(session, actor, filters=FunnelFilters(start=start, end=end))
        leads = session.scalars(within_organization(result.organization_id, Lead)).all()
        occurred = session.scalars(within_organization(result.organization_id, Activity)).all()
    expected = sum(start <= lead.received_at.date() <= end for lead in leads)

    assert funnel.steps[0].count == expected > 0
    assert all(a.occurred_at.tzinfo is UTC and a.occurred_at < ANCHOR for a in occurred)
    assert min(a.occurred_at for a in occurred) > datetime(2024, 9, 1, tzinfo=UTC)


def test_the_api_lists_and_reads_a_scale_tenant(db: Database, client: TestClient) -> None:
    result = seed_scale(db, opportunities=2_000, slug="bench")
    tokens = {}
    for role in ("sales_vp", "rep"):
        response = client.post("/api/v1/auth/token", json={"username": f"bench.{role}", "password": DEMO_PASSWORD})
        assert response.status_code == 201, response.text
        tokens[role] = {"Authorization": f"Bearer {response.json()['token']}"}

    page = client.get("/api/v1/opportunities", params={"limit": 100, "sort": "-amount"}, headers=tokens["sales_vp"])
    first = page.json()["items"][0]
    one = client.get(f"/api/v1/opportunities/{first['id']}", headers=tokens["sales_vp"])
    activities = client.get("/api/v1/activities", params={"limit": 20}, headers=tokens["sales_vp"])
    mine = client.get("/api/v1/opportunities", params={"limit": 200}, headers=tokens["rep"])
    with db.reading(None, system=True) as session:
        top = session.scalar(
            within_organization(result.organization_id, Opportunity).order_by(
                Opportunity.amount.desc(), Opportunity.id.desc()
            )
        )
        rep = org_service.authenticate(session, username="bench.rep", password=DEMO_PASSWORD)
    assert top is not None
    assert rep is not None

    assert page.status_code == 200
    assert len(page.json()["items"]) == 100
    assert page.json()["next_cursor"]
    assert (first["id"], first["amount"]) == (top.id, str(top.amount))
    assert one.status_code == 200
    assert one.json()["margin"] == str(top.margin)
    assert one.json()["stage"] == top.stage
    assert activities.status_code == 200
    assert len(activities.json()["items"]) == 20
    assert mine.status_code == 200
    assert mine.json()["items"]
    assert {item["owner_id"] for item in mine.json()["items"]} == {rep.id}


def test_a_million_deals_come_with_their_proportions_and_200_reps() -> None:
    sizes = ScaleCounts(1_000_000)
    teams = scale_teams(1_000_000)

    assert (sizes.accounts, sizes.contacts, sizes.leads, sizes.activities, sizes.tickets) == (
        200_000,
        600_000,
        500_000,
        5_000_000,
        50_000,
    )
    assert sum(reps for _, reps in teams.values()) == 200
    assert all(managers * 8 >= reps for managers, reps in teams.values())


def test_a_load_leaves_the_planner_statistics_where_the_role_may_write_them(db: Database) -> None:
    seed_scale(db, opportunities=500)
    with db.unit_of_work(None, system=True) as session:
        role_before = None if db.dialect == "sqlite" else session.scalar(text("SELECT current_user"))
        analyzed = bulk.analyze(session, ["orders", "activities", "no_such_table"])
        if db.dialect == "sqlite":
            sampled = set(session.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
        else:
            role_after = session.scalar(text("SELECT current_user"))
            stamped = set(
                session.scalars(
                    text(
                        "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                        "AND relname IN ('orders', 'activities')"
                    )
                )
            )

    assert analyzed == ["orders", "activities"]
    if db.dialect == "sqlite":
        assert {"orders", "activities"} <= sampled
    else:
        # the application role does not own the tables; the superuser login analyzes them for a
        # moment and hands the connection back to the application role
        assert stamped == {"orders", "activities"}
        assert role_after == role_before == "closeloop_app"
