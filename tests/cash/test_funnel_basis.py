"""The funnel's won money on either basis: the won deals' amounts (bookings), or the approved
collections on their contracts (collections) — through the API, within the caller's row scope."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import update

from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity
from tests.cash.conftest import World
from tests.web.test_settings_pages import browser


def _won_deal_with_collections(world: World) -> None:
    """A deal won for 100,000 whose contract has 30,000 collected and approved, 10,000 waiting."""
    org = world.tenant.organization_id
    with world.db.unit_of_work(None, system=True) as session:
        deal = Opportunity(
            organization_id=org,
            name="影像系统",
            stage=Stage.WON,
            amount=Decimal("100000.00"),
            opened_at=datetime(2026, 2, 1, tzinfo=UTC),
            closed_at=datetime(2026, 2, 20, tzinfo=UTC),
            owner_id=world.tenant["rep"].user_id,
        )
        session.add(deal)
        session.flush()
        deal_id = deal.id
    contract = world.contract("100000.00", signed_on=date(2026, 2, 20))
    with world.db.unit_of_work(None, system=True) as session:
        session.execute(update(Contract).where(Contract.id == contract).values(opportunity_id=deal_id))
    instalment = world.instalment(contract, "100000.00", date(2026, 3, 31))
    world.collect(instalment, "30000.00")
    world.collect(instalment, "10000.00", approve=False)


def test_won_money_on_bookings_and_on_collections(client: TestClient, world: World) -> None:
    _won_deal_with_collections(world)

    def won(basis: str, as_key: str = "rep") -> dict[str, object]:
        response = client.get(f"/api/v1/funnel?basis={basis}", headers=world.tenant[as_key].headers)
        assert response.status_code == 200, response.text
        extra: dict[str, object] = next(step for step in response.json()["steps"] if step["step"] == "won")["extra"]
        return extra

    assert (won("bookings")["won_amount"], won("bookings")["basis"]) == ("100000.00", "bookings")
    assert (won("collections")["won_amount"], won("collections")["basis"]) == ("30000.00", "collections")
    assert won("collections", "rep2")["won_amount"] == "0.00"  # another rep's deal is outside their scope
    refused = client.get("/api/v1/funnel?basis=cash", headers=world.tenant["rep"].headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


def test_the_performance_dashboard_counts_collections_as_revenue(client: TestClient, world: World) -> None:
    _won_deal_with_collections(world)
    rep = browser(client, world.db, world.tenant["rep"])
    bookings = rep.get("/dashboard?first=owner&start=2026-01-01&end=2026-03-31")
    assert bookings.status_code == 200, bookings.text
    assert 'data-basis="bookings"' in bookings.text
    assert "¥100,000.00" in bookings.text
    assert "basis=collections" in bookings.text  # the switch
    collections = rep.get("/dashboard?first=owner&start=2026-01-01&end=2026-03-31&basis=collections")
    assert 'data-basis="collections"' in collections.text
    assert "¥30,000.00" in collections.text  # approved only: the 10,000 waiting is not revenue
    assert "¥100,000.00" not in collections.text
    other = browser(client, world.db, world.tenant["rep2"]).get("/dashboard?first=owner&basis=collections")
    assert "¥30,000.00" not in other.text  # another rep's deal stays outside their scope
