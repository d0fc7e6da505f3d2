"""Stock-outs and price changes in the deviation attribution (FC-3), on small worked data: which
products count as out of stock or repriced, and how a missed or re-priced deal's gap is split."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeloop.cli import forecast_commands
from closeloop.cli.main import app as cli
from closeloop.crm.accounts.models import Account
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.products.models import Product
from closeloop.db.session import Database
from closeloop.forecasting.attribution import DealOutcome, decompose, repriced_products, stocked_out_products
from closeloop.forecasting.events import during_event, events_between
from closeloop.forecasting.models import DealerStock
from tests.factories import Tenant

SNAPSHOT = datetime(2026, 10, 1, 8, tzinfo=UTC)


def _outcome(forecast: float, amount_then: float, amount_now: float, **flags: bool) -> DealOutcome:
    values = {"won_in_period": False, "lost": False, "owner_changed": False, "account_lost": False, **flags}
    return DealOutcome(forecast, 0.5, amount_then, amount_now, **values)


def test_missed_deals_go_to_stock_outs_then_price_changes_and_the_rest_stays_visible() -> None:
    deals = [
        _outcome(40.0, 80.0, 80.0, stock_out=True),  # slipped while its product was out of stock: −40
        _outcome(30.0, 60.0, 60.0, lost=True, stock_out=True, price_changed=True),  # stock-out first: −30
        _outcome(20.0, 40.0, 40.0, lost=True, price_changed=True),  # lost after a price change: −20
        _outcome(25.0, 50.0, 45.0, won_in_period=True, price_changed=True),  # won 5 lower at the new price
        _outcome(15.0, 30.0, 30.0, in_event=True),  # expected during a tender freeze, slipped: −15
        _outcome(10.0, 20.0, 20.0),  # slipped, no other cause: close date −10
        _outcome(10.0, 20.0, 20.0, lost=True),  # lost against its probability: unexplained −10
    ]
    parts = decompose(deals, [], run_rate=0.0)
    gap = 45.0 - sum(deal.forecast for deal in deals)
    assert parts["stock_outs"] == pytest.approx(-70.0)
    assert parts["price_changes"] == pytest.approx(-20.0 - 5.0)
    assert parts["amount_change"] == 0.0
    assert parts["calendar_events"] == pytest.approx(-15.0)
    assert parts["close_date"] == pytest.approx(-10.0)
    # the won deal's win against its probability (+25) and the lost one (−10) stay unexplained
    assert parts["unexplained"] == pytest.approx(25.0 - 10.0)
    assert sum(parts.values()) == pytest.approx(gap)
    assert sum(value / gap for value in parts.values()) == pytest.approx(1.0)


def test_stock_outs_and_price_moves_are_read_from_stock_reports_and_order_lines(db: Database, tenant: Tenant) -> None:
    org = tenant.organization_id
    with db.unit_of_work(None, system=True) as session:
        dealer = Account(organization_id=org, name="经销商乙", owner_id=tenant["rep"].user_id)
        steady, repriced, empty, restocked = (
            Product(organization_id=org, name=name, code=name) for name in ("P-STEADY", "P-UP", "P-EMPTY", "P-OLD")
        )
        session.add_all([dealer, steady, repriced, empty, restocked])
        session.flush()
        # September (before) and October (the period): the second product goes from 100 to 110 (+10 %),
        # the first from 100 to 103 (+3 %, under the 5 % threshold)
        prices = {(steady.id, 9): 100, (steady.id, 10): 103, (repriced.id, 9): 100, (repriced.id, 10): 110}
        for number, ((product_id, month), price) in enumerate(prices.items()):
            order = Order(organization_id=org, number=f"SO-{number}", account_id=dealer.id,
                          ordered_at=datetime(2026, month, 10, tzinfo=UTC), total=Decimal(price * 2))  # fmt: skip
            session.add(order)
            session.flush()
            line = OrderLine(organization_id=org, order_id=order.id, position=1, product_id=product_id,
                             quantity=Decimal(2), unit_price=Decimal(price), amount=Decimal(price * 2))  # fmt: skip
            session.add(line)

        def stock(product_id: int, on_hand: int, reported_at: datetime) -> DealerStock:
            return DealerStock(organization_id=org, account_id=dealer.id, product_id=product_id,
                               on_hand=Decimal(on_hand), reported_at=reported_at)  # fmt: skip

        session.add_all(
            [
                stock(empty.id, 0, SNAPSHOT + timedelta(days=9)),  # reported empty during the period
                stock(restocked.id, 0, SNAPSHOT - timedelta(days=2)),  # empty before the snapshot: it knew
                stock(steady.id, 12, SNAPSHOT + timedelta(days=3)),
            ]
        )
    with db.reading(None, system=True) as session:
        assert stocked_out_products(session, org, SNAPSHOT, datetime(2026, 11, 1, tzinfo=UTC)) == {empty.id}
        assert repriced_products(session, org, date(2026, 10, 1), date(2026, 10, 31)) == {repriced.id}
        # another organization sees none of it
        assert stocked_out_products(session, org + 10_000, SNAPSHOT, datetime(2026, 11, 1, tzinfo=UTC)) == set()


def test_the_event_calendar_is_imported_from_a_csv_and_scoped(
    db: Database, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_commands, "database", lambda: db)
    sheet = tmp_path / "calendar.csv"
    sheet.write_text(
        "name,kind,starts_on,ends_on,region,product_line\n"
        "春节,holiday,2027-02-10,2027-02-17,,\n"
        f"省集采招标,tender,2027-03-05,,{tenant.region_id},\n",
        encoding="utf-8",
    )
    org = str(tenant.organization_id)
    result = CliRunner().invoke(cli, ["forecast", "import-calendar", str(sheet), "--org", org])
    assert result.exit_code == 0, result.output
    with db.reading(None, system=True) as session:
        events = events_between(session, tenant.organization_id, date(2027, 2, 1), date(2027, 4, 1))
        assert [(event.name, event.ends_on) for event in events] == [
            ("春节", date(2027, 2, 17)),
            ("省集采招标", date(2027, 3, 5)),
        ]
        assert during_event(events, date(2027, 2, 12), None, None)
        assert during_event(events, date(2027, 3, 5), tenant.region_id, 4)
        assert not during_event(events, date(2027, 3, 5), tenant.region_id + 1, 4)  # another region's tender
        assert not during_event(events, date(2027, 3, 6), tenant.region_id, 4)
    # a bad row names its line and field, and nothing is replaced
    sheet.write_text("name,kind,starts_on,ends_on\n国庆,holiday,2026-10-01,2026-09-30\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["forecast", "import-calendar", str(sheet), "--org", org])
    assert refused.exit_code != 0
    assert "ends_on" in refused.output
    assert "line 2" in refused.output
    with db.reading(None, system=True) as session:
        assert len(events_between(session, tenant.organization_id, date(2026, 1, 1), date(2028, 1, 1))) == 2
