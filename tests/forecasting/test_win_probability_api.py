"""GET /api/v1/opportunities/{id}/win-probability and the opportunity page on a small synthetic
organization: the stage win rate before a model exists, the trained model's probability and reasons
after, tenancy and masks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from fastapi.testclient import TestClient

from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.session import Database
from closeloop.worker import tasks
from tests.factories import Tenant
from tests.web.test_settings_pages import browser

START = datetime(2025, 1, 6, tzinfo=UTC)


def _deals(db: Database, tenant: Tenant, count: int = 120) -> int:
    """``count`` closed deals owned by the rep (a high margin at negotiation wins) and one open deal;
    returns the open deal's id."""
    rng = np.random.default_rng(4)
    owner = tenant["rep"].user_id
    with db.unit_of_work(None, system=True) as session:
        for index in range(count):
            stage = [Stage.QUALIFICATION, Stage.PROPOSAL, Stage.NEGOTIATION][index % 3]
            margin = float(rng.uniform(5, 45))
            won = (margin > 25) if stage == Stage.NEGOTIATION else (margin > 38)
            opened = START + timedelta(days=index)
            closed = opened + timedelta(days=20)
            deal = Opportunity(
                organization_id=tenant.organization_id,
                name=f"deal {index}",
                owner_id=owner,
                stage=Stage.WON if won else Stage.LOST,
                amount=Decimal(10000 + 100 * index),
                margin=Decimal(f"{margin:.2f}"),
                opened_at=opened,
                closed_at=closed,
                stage_changed_at=closed,
            )
            session.add(deal)
            session.flush()
            session.add(
                StageChange(
                    organization_id=tenant.organization_id,
                    opportunity_id=deal.id,
                    from_stage=stage,
                    to_stage=deal.stage,
                    changed_at=closed,
                    duration_seconds=5 * 86400,
                )
            )
        open_deal = Opportunity(
            organization_id=tenant.organization_id,
            name="open",
            owner_id=owner,
            stage=Stage.NEGOTIATION,
            amount=Decimal(50000),
            margin=Decimal("44.00"),
            opened_at=START,
            stage_changed_at=START,
        )
        session.add(open_deal)
        session.flush()
        return open_deal.id


def _get(client: TestClient, tenant: Tenant, who: str, deal: int, *, accept: str = "en") -> dict[str, object]:
    """The answer for ``who``, asking for ``accept`` (``*``: no language, the user's own)."""
    headers = {**tenant[who].headers, "Accept-Language": accept}
    response = client.get(f"/api/v1/opportunities/{deal}/win-probability", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_win_probability_with_reasons_tenancy_and_masks(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = _deals(db, tenant)
    before = _get(client, tenant, "rep", deal)
    assert before["model"] == {"kind": "stage_win_rate"}
    # won at negotiation: 1 + wins / 2 + closed, as counted from the deals above
    assert 0.5 < float(str(before["probability"])) < 1.0
    assert before["reasons"] == []

    # the weekly task retrains every seller organization; the other one has no closed deals yet
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    trained = tasks.retrain_win_probability()
    assert trained[tenant.organization_id] == 120
    assert other_tenant.organization_id not in trained

    finance = _get(client, tenant, "sales_vp", deal, accept="*")
    assert finance["model"]["kind"] == "calibrated_lightgbm"  # type: ignore[index]
    assert float(str(finance["probability"])) > 0.6
    features = [reason["feature"] for reason in finance["reasons"]]  # type: ignore[attr-defined]
    assert "margin" in features
    # the sales VP reads Chinese by default
    assert any("毛利率" in reason["text"] for reason in finance["reasons"])  # type: ignore[attr-defined]
    # and English when the request asks for it
    english = _get(client, tenant, "sales_vp", deal)
    assert any("margin" in reason["text"].lower() for reason in english["reasons"])  # type: ignore[attr-defined]
    assert "毛利" not in str(english["reasons"])

    rep = _get(client, tenant, "rep", deal, accept="zh-CN")
    assert rep["probability"] == finance["probability"]
    assert all(reason["feature"] != "margin" for reason in rep["reasons"])  # type: ignore[attr-defined]
    assert "毛利" not in str(rep)
    assert "margin" not in str(rep).lower()

    # the opportunity page shows the same probability and reasons, masked alike
    page = browser(client, db, tenant["rep"], locale="en").get(f"/opportunities/{deal}")
    assert page.status_code == 200
    assert "Win probability" in page.text
    assert f"{float(str(rep['probability'])) * 100:.0f}%" in page.text
    assert "Margin" not in page.text
    finance_page = browser(client, db, tenant["sales_vp"], locale="zh_CN").get(f"/opportunities/{deal}")
    assert "赢单概率" in finance_page.text
    assert "毛利率：" in finance_page.text

    foreign = client.get(f"/api/v1/opportunities/{deal}/win-probability", headers=other_tenant["admin"].headers)
    assert foreign.status_code == 404
    assert foreign.headers["content-type"].startswith("application/problem+json")


def test_a_model_that_forecast_its_holdout_worse_than_the_stage_rates_is_not_used(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from closeloop.forecasting.models import WinProbabilityModel

    deal = _deals(db, tenant)
    rates = _get(client, tenant, "rep", deal)
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    tasks.retrain_win_probability()
    with db.unit_of_work(None, system=True) as session:
        stored = session.scalar(
            select(WinProbabilityModel).where(WinProbabilityModel.organization_id == tenant.organization_id)
        )
        assert stored is not None
        assert {"brier", "stage_rate_brier"} <= set(stored.metrics)
        # as if the stage rates had forecast the held-out deals better
        stored.metrics = {**stored.metrics, "brier": 0.30, "stage_rate_brier": 0.20}

    body = _get(client, tenant, "rep", deal)

    assert body["probability"] == rates["probability"]
    assert body["model"]["kind"] == "stage_win_rate"  # type: ignore[index]
    assert body["model"]["model_not_used"]["stage_rate_brier"] == 0.20  # type: ignore[index]
    page = browser(client, db, tenant["rep"], locale="en").get(f"/opportunities/{deal}")
    assert "the trained model forecast recent deals no better" in page.text


def test_closeloop_forecast_train_trains_now_and_says_whether_the_model_is_used(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from closeloop.cli import forecast_commands
    from closeloop.cli.main import app as cli

    deal = _deals(db, tenant)
    monkeypatch.setattr(forecast_commands, "database", lambda: db)

    done = CliRunner().invoke(cli, ["forecast", "train", "--org", str(tenant.organization_id)])

    assert done.exit_code == 0, done.output
    assert "trained on 120 closed deals" in done.output
    assert "holdout of 24 deals: model AUC" in done.output
    used = "the model is used" in done.output
    assert used != ("stage rates forecast the holdout better" in done.output)
    kind = _get(client, tenant, "rep", deal)["model"]["kind"]  # type: ignore[index]
    assert kind == ("calibrated_lightgbm" if used else "stage_win_rate")
