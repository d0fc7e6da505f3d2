"""FC-4 over the API and the CLI: integrations and sales ops push inquiry-keyword signals
(``POST /api/v1/signals``, all or nothing, each a ``signal.recorded`` event); the stock the
``reserve_stock`` action held is listed in the caller's reach and released (audited, once), which
gives the units back to the dealer's available stock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.cli import forecast_commands
from closeloop.cli.main import app as cli
from closeloop.crm.accounts.models import Account
from closeloop.crm.products.models import Product
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.forecasting import signals
from closeloop.forecasting.models import DealerStock, InquirySignal
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.events.models import OutboxEvent
from tests.factories import Tenant
from tests.samples import assert_problem


def _accounts(db: Database, tenant: Tenant) -> dict[str, int]:
    """Two hospitals (the rep's and rep2's), a dealer with 30 units of ZJK-01 in stock."""
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:
        hospitals = [
            Account(organization_id=org, name=name, owner_id=tenant[owner].user_id, region_id=tenant.region_id)
            for name, owner in (("协和医院", "rep"), ("仁济医院", "rep2"))
        ]
        dealer = Account(organization_id=org, name="经销商乙", region_id=tenant.region_id)
        product = Product(organization_id=org, name="椎间孔镜配件", code="ZJK-01", lead_time_days=14)
        session.add_all([*hospitals, dealer, product])
        session.flush()
        stock = DealerStock(organization_id=org, account_id=dealer.id, product_id=product.id, on_hand=Decimal(30))
        session.add(stock)
        session.flush()
        return {"xiehe": hospitals[0].id, "renji": hospitals[1].id, "stock": stock.id}


def _signals_stored(db: Database, tenant: Tenant) -> tuple[int, int]:
    with db.reading(None, system=True) as session:
        org = tenant.organization_id
        stored = (
            session.scalar(select(func.count()).select_from(InquirySignal).where(tenant_clause(org, InquirySignal)))
            or 0
        )
        events = (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(tenant_clause(org, OutboxEvent), OutboxEvent.event_type == "signal.recorded")
            )
            or 0
        )
    return stored, events


def test_signals_are_recorded_all_or_nothing_in_the_callers_tenant(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    ids = _accounts(db, tenant)
    foreign = _accounts(db, other_tenant)["xiehe"]
    good = [
        {"account_id": ids["xiehe"], "keyword": "椎间孔镜配件", "occurred_at": "2026-11-25", "source": "site_search"},
        {"account_id": ids["renji"], "keyword": " 椎间孔镜配件 ", "occurred_at": "2026-11-26T09:30+08:00", "count": 3},
    ]

    refused = client.post("/api/v1/signals", json=good, headers=tenant["rep"].headers)
    assert refused.status_code == 403, refused.text
    bad = [*good, {"account_id": ids["xiehe"], "keyword": "", "occurred_at": "2026-11-26"}]
    invalid = client.post("/api/v1/signals", json=bad, headers=tenant["admin"].headers)
    assert invalid.status_code == 422, invalid.text
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["errors"][0]["field"] == "items.2.keyword"
    elsewhere = [good[0], {**good[1], "account_id": foreign}]
    unknown = client.post("/api/v1/signals", json=elsewhere, headers=tenant["admin"].headers)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0] == {
        "field": "items.1.account_id", "message": "no such account", "code": "invalid"
    }  # fmt: skip
    overflow = [{**good[0], "occurred_at": "9999-12-31T23:59:59-05:00"}]
    late = client.post("/api/v1/signals", json=overflow, headers=tenant["admin"].headers)
    assert late.status_code == 422, late.text
    assert late.json()["errors"][0]["field"] == "items.0.occurred_at"
    too_many = client.post("/api/v1/signals", json=[good[0]] * 1001, headers=tenant["admin"].headers)
    assert too_many.status_code == 422
    assert _signals_stored(db, tenant) == (0, 0)  # nothing of a refused call was kept

    created = client.post("/api/v1/signals", json=good, headers=tenant["sales_vp"].headers)
    assert created.status_code == 201, created.text
    assert created.json() == {"recorded": 2}
    assert _signals_stored(db, tenant) == (2, 2)
    with db.reading(None, system=True) as session:
        rows = session.scalars(
            select(InquirySignal).where(tenant_clause(tenant.organization_id, InquirySignal)).order_by(InquirySignal.id)
        ).all()
    assert [(r.keyword, r.source, r.count, r.occurred_at.hour) for r in rows] == [
        ("椎间孔镜配件", "site_search", 1, 12), ("椎间孔镜配件", "api", 3, 1),
    ]  # fmt: skip


def test_reservations_are_listed_in_reach_and_released_once_freeing_the_units(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    ids = _accounts(db, tenant)
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:
        mine = signals.reserve(session, org, account_id=ids["xiehe"], product="ZJK-01", quantity=Decimal(20),
                               reason="rule 1")  # fmt: skip
        theirs = signals.reserve(session, org, account_id=ids["renji"], product="ZJK-01", quantity=Decimal(5),
                                 reason="rule 1")  # fmt: skip
        mine_id, theirs_id = mine.id, theirs.id

    def left() -> Decimal:
        with db.reading(None, system=True) as session:
            stock = session.get(DealerStock, ids["stock"])
            assert stock is not None
            return signals.available(session, org, stock)

    assert left() == Decimal(5)
    as_rep = client.get("/api/v1/stock-reservations", headers=tenant["rep"].headers)
    assert as_rep.status_code == 200, as_rep.text
    assert [item["id"] for item in as_rep.json()["items"]] == [mine_id]  # rep2's account is out of reach
    first = client.get(
        "/api/v1/stock-reservations", params={"status": "active", "limit": 1}, headers=tenant["sales_vp"].headers
    )
    listed = first.json()
    assert set(listed) == {"items", "next_cursor"}
    assert [item["id"] for item in listed["items"]] == [theirs_id]
    assert first.headers["Link"].endswith('>; rel="next"')
    following = client.get(
        "/api/v1/stock-reservations",
        params={"status": "active", "limit": 1, "cursor": listed["next_cursor"]},
        headers=tenant["sales_vp"].headers,
    ).json()
    assert ([item["id"] for item in following["items"]], following["next_cursor"]) == ([mine_id], None)
    bad = client.get("/api/v1/stock-reservations", params={"cursor": "nonsense"}, headers=tenant["rep"].headers)
    assert_problem(bad, 422, field="cursor")

    forbidden = client.post(f"/api/v1/stock-reservations/{mine_id}/release", headers=tenant["rep"].headers)
    assert forbidden.status_code == 403, forbidden.text
    released = client.post(f"/api/v1/stock-reservations/{mine_id}/release", headers=tenant["manager"].headers)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    assert left() == Decimal(25)  # the 20 units are available again
    again = client.post(f"/api/v1/stock-reservations/{mine_id}/release", headers=tenant["manager"].headers)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    with db.reading(None, system=True) as session:
        trail = session.scalars(
            select(AuditEntry.action).where(
                tenant_clause(org, AuditEntry), AuditEntry.subject_type == "stock_reservation"
            )
        ).all()
    assert trail == ["stock_reservation.released"]
    filtered = client.get(
        "/api/v1/stock-reservations", params={"status": "released", "account_id": ids["xiehe"]},
        headers=tenant["rep"].headers,
    ).json()  # fmt: skip
    assert [item["id"] for item in filtered["items"]] == [mine_id]

    runner = CliRunner()
    shown = runner.invoke(cli, ["forecast", "reservations", "--org", str(org), "--status", "active"])
    assert shown.exit_code == 0, shown.output
    assert "仁济医院" in shown.output
    assert "协和医院" not in shown.output
    done = runner.invoke(cli, ["forecast", "release", str(theirs_id), "--org", str(org)])
    assert done.exit_code == 0, done.output
    assert left() == Decimal(30)
    twice = runner.invoke(cli, ["forecast", "release", str(theirs_id), "--org", str(org)])
    assert twice.exit_code == 1
    assert "already released" in twice.output
