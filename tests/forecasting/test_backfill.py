"""Bookings snapshots computed for past days from the history (the demo's accuracy over time): which
deals were open then, at which stage, what was learned from the deals closed by then only, and the
accuracy API listing each finished month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.session import Database
from closeloop.forecasting.bookings import backfill_snapshots, open_deals_then
from tests.factories import Tenant

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def _moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def _deal(db: Database, tenant: Tenant, name: str, path: list[tuple[date, Stage]], expected: date) -> int:
    """A deal opened on the first day of ``path`` that moved through its stages on those days."""
    with db.unit_of_work(None, system=True) as session:
        final_day, final = path[-1]
        deal = Opportunity(
            organization_id=tenant.organization_id,
            name=name,
            owner_id=tenant["rep"].user_id,
            stage=final,
            amount=Decimal(10_000),
            opened_at=_moment(path[0][0]),
            stage_changed_at=_moment(final_day),
            closed_at=_moment(final_day) if final in (Stage.WON, Stage.LOST) else None,
            expected_close_date=expected,
        )
        session.add(deal)
        session.flush()
        previous: Stage | None = None
        for day, stage in path:
            session.add(
                StageChange(
                    organization_id=tenant.organization_id,
                    opportunity_id=deal.id,
                    from_stage=previous,
                    to_stage=stage,
                    changed_at=_moment(day),
                )
            )
            previous = stage
        return deal.id


def test_past_snapshots_see_the_pipeline_as_it_stood(client: TestClient, db: Database, tenant: Tenant) -> None:
    won = _deal(
        db,
        tenant,
        "won in October",
        [(date(2026, 8, 1), Stage.PROSPECTING), (date(2026, 9, 15), Stage.PROPOSAL), (date(2026, 10, 20), Stage.WON)],
        date(2026, 10, 10),
    )
    _deal(
        db,
        tenant,
        "lost in September",
        [(date(2026, 9, 5), Stage.PROSPECTING), (date(2026, 9, 20), Stage.LOST)],
        date(2026, 10, 1),
    )
    still_open = _deal(
        db,
        tenant,
        "still open",
        [(date(2026, 7, 1), Stage.PROSPECTING), (date(2026, 10, 5), Stage.NEGOTIATION)],
        date(2026, 12, 1),
    )
    with frozen_at(NOW), db.unit_of_work(None, system=True) as session:
        then = {
            day: [(deal.id, deal.stage) for deal in open_deals_then(session, tenant.organization_id, day)]
            for day in (date(2026, 7, 31), date(2026, 9, 1), date(2026, 10, 1))
        }
        taken = backfill_snapshots(session, tenant.organization_id, months=3, simulations=50)
        again = backfill_snapshots(session, tenant.organization_id, months=3, simulations=50)
        summary = [
            (snapshot.as_of, snapshot.details["open_deals"], snapshot.method, snapshot.seed) for snapshot in taken
        ]
    assert then == {
        date(2026, 7, 31): [(still_open, "prospecting")],
        date(2026, 9, 1): [(won, "prospecting"), (still_open, "prospecting")],
        date(2026, 10, 1): [(won, "proposal"), (still_open, "prospecting")],
    }
    assert summary == [
        (date(2026, 8, 1), 2, "stage_win_rate", date(2026, 8, 1).toordinal()),
        (date(2026, 9, 1), 2, "stage_win_rate", date(2026, 9, 1).toordinal()),
        (date(2026, 10, 1), 2, "stage_win_rate", date(2026, 10, 1).toordinal()),
    ]
    assert again == []  # days that have a snapshot are skipped

    with frozen_at(NOW):
        response = client.get(
            "/api/v1/forecasts/bookings/accuracy?granularity=month", headers=tenant["sales_vp"].headers
        )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    finished = sorted({item["period"] for item in items if item["complete"]})
    assert finished == ["2026-08", "2026-09", "2026-10"]
    # October's bookings: the one deal won on 20 October, against each forecast of October
    october = [item for item in items if item["period"] == "2026-10"]
    assert [item["as_of"] for item in october] == ["2026-08-01", "2026-09-01", "2026-10-01"]
    assert {item["actual"] for item in october} == {"10000.00"}
