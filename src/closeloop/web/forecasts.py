"""The forecast page (issue #5 item 8): the bookings forecast by period and dimension with its 80 %
intervals, its accuracy over time (each snapshot against what was booked) and the attribution of a
period's deviation (FC-3). Everything is read from the stored snapshots — the page never fits or
simulates anything — through the same services as the API, as the signed-in person: their reach
and their field masks (a mask on ``opportunity.amount`` takes the page away)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from closeloop.core.actor import RowScope
from closeloop.core.errors import ValidationFailed
from closeloop.forecasting import actions, attribution, bookings, scorecards
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, locale_of, render, require_user

router = APIRouter(include_in_schema=False)

DIMENSION_LABELS = {
    "total": N_("Total"),
    "owner": N_("Rep"),
    "region": N_("Region"),
    "product_line": N_("Product line"),
}
GRANULARITY_LABELS = {"month": N_("By month"), "quarter": N_("By quarter")}
METHOD_LABELS = {
    "calibrated_lightgbm": N_("win probabilities from the calibrated model"),
    "stage_win_rate": N_("win probabilities from each stage's historical win rate for the days a deal has sat in it"),
}
NOT_MEASURED_LABELS = {
    "stock_outs": N_("stock-outs"),
    "price_changes": N_("price changes"),
    "calendar_events": N_("calendar events"),
}

SOURCE_LABELS = {
    "opportunities": N_("Opportunities"),
    "activities": N_("Activities"),
    "orders": N_("Orders"),
    "dealer_stock": N_("Dealer stock reports"),
    "forecast_snapshots": N_("Forecast snapshots"),
}
STATUS_LABELS = {"ok": N_("OK"), "late": N_("Late"), "stopped": N_("Stopped"), "no_data": N_("No data")}


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ValidationFailed.one(name, f"must be one of: {', '.join(allowed)}")
    return value


@router.get("/forecasts")
def forecast_page(request: Request) -> Response:
    user, actor = require_user(request)
    locale = locale_of(request)
    granularity = _choice(request, "granularity", ("month", "quarter"), "month")
    dimension = _choice(request, "dimension", tuple(DIMENSION_LABELS), "total")
    with database_of(request).reading(actor) as session:
        answer = bookings.forecast(session, actor, granularity=granularity, dimension=dimension)
        history = bookings.accuracy(session, actor, granularity=granularity)
        periods = sorted({item["period"] for item in answer["items"]})
        # by default, explain the latest finished period a forecast covered (else the current one)
        finished = [item["period"] for item in history["items"] if item["complete"]]
        period = request.query_params.get("period") or (finished[-1] if finished else periods[0] if periods else "")
        periods = sorted({*periods, *finished})
        explained = None
        if answer["snapshot"] is not None and period:
            explained = attribution.attribution(session, actor, period=period, locale=locale)
        restock = actions.suggestions(session, actor)
        scorecard = scorecards.deviation_by_manager(session, actor, granularity=granularity)
        sources = scorecards.data_sources(session, actor)
        split = None
        pool_text = (request.query_params.get("pool") or "").strip().replace(",", "")
        if pool_text and actor.scope is RowScope.ALL:
            try:
                pool = Decimal(pool_text)
            except InvalidOperation:
                raise ValidationFailed.one("pool", "must be an amount") from None
            split = actions.incentives(session, actor, pool=pool)
    items = answer["items"]
    # which periods' intervals were calibrated against past forecasts, and from how many (one per period)
    interval_of: dict[str, tuple[str, int]] = {}
    for item in items:
        interval_of.setdefault(item["period"], (item["interval"], item["interval_pairs"]))
    by_period: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_period.setdefault(item["period"], []).append(item)
    series = ("expected", "low", "high", "commit", "best_case")
    sums: dict[str, dict[str, float]] = {
        label: {name: round(sum(float(row[name]) for row in rows), 2) for name in series}
        for label, rows in by_period.items()
    }
    chart = {
        "periods": list(sums),
        **{name: [figures[name] for figures in sums.values()] for name in series},
        "accuracy": [
            {
                "label": f"{item['period']} · {item['as_of']}",
                "expected": float(item["expected"]),
                "low": float(item["low"]),
                "high": float(item["high"]),
                "actual": float(item["actual"]),
            }
            for item in history["items"]
        ],
        "locale": locale,
    }
    return render(
        request,
        "forecasts/index.html",
        {
            "user": user,
            "actor": actor,
            "answer": answer,
            "items": items,
            "history": history["items"],
            "explained": explained,
            "period": period,
            "periods": periods,
            "granularity": granularity,
            "dimension": answer["dimension"],
            "dimension_labels": DIMENSION_LABELS,
            "granularity_labels": GRANULARITY_LABELS,
            "method_labels": METHOD_LABELS,
            "not_measured_labels": NOT_MEASURED_LABELS,
            "whole_organization": answer["dimension"] == dimension,
            "chart": chart,
            # "period (past forecasts learned from)"
            "calibrated_periods": [f"{p} ({n})" for p, (kind, n) in interval_of.items() if kind == "split_conformal"],
            "simulated_periods": [f"{p} ({n})" for p, (kind, n) in interval_of.items() if kind != "split_conformal"],
            "restock": restock,
            "scorecard": scorecard["items"],
            "sources": sources,
            "split": split,
            "pool": pool_text,
            "may_split": actor.scope is RowScope.ALL,
            "source_labels": SOURCE_LABELS,
            "status_labels": STATUS_LABELS,
        },
    )
