"""Dashboards: performance drill-down, the records behind a funnel step, alert thresholds, and the
lineage of published metrics and dashboards."""

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.crm import lineage, metrics, performance
from closeloop.crm.alerts import service as alerts
from closeloop.crm.funnel.service import STEPS, FunnelFilters, step_records
from closeloop.governance.fields import policy_of
from closeloop.governance.permissions import require

router = APIRouter()

OptionalId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Dimension = Literal["quarter", "region", "owner", "account", "product_line"]


@router.get(
    "/performance",
    tags=["dashboards"],
    operation_id="get_performance",
    response_class=Response,
    summary="Revenue and win rate of closed deals, broken down by one dimension, within your row scope",
)
def get_performance(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    by: Annotated[
        str | None,
        Query(
            pattern=r"^(quarter|region|owner|account|product_line|custom\.[a-z][a-z0-9_]{0,39})$",
            description="The dimension to break down (one bar each): quarter, region, owner, account, "
            "product_line, or a formula field of opportunities (custom.<name>)",
        ),
    ] = None,
    quarter: Annotated[str | None, Query(max_length=7, description="Fix the quarter, e.g. 2025-Q3")] = None,
    region: Annotated[str | None, Query(max_length=20, description="Fix a region id (or 'none')")] = None,
    owner: Annotated[str | None, Query(max_length=20, description="Fix a rep's user id")] = None,
    account: Annotated[str | None, Query(max_length=20, description="Fix a customer (account id)")] = None,
    product_line: Annotated[str | None, Query(max_length=20, description="Fix a product line id (or 'none')")] = None,
    start: Annotated[date | None, Query(description="Deals closed on or after this day")] = None,
    end: Annotated[date | None, Query(description="Deals closed on or before this day")] = None,
) -> Response:
    """Each metric is computed in SQL over the deals closed (won or lost) in the slice. Metrics that
    read fields masked for your role (average margin) are absent. Fixed dimensions keep the order
    they are given in (the breadcrumbs of a drill-down)."""
    given = {"quarter": quarter, "region": region, "owner": owner, "account": account, "product_line": product_line}
    order = [name for name in request.query_params if given.get(name)]
    params = {name: str(given[name]) for name in order}
    deals = performance.Slice.from_params({**params, **_dates(start, end)})
    with database.reading(actor) as session:
        return json_response(performance.breakdown(session, actor, deals, by=by).as_dict())


def _dates(start: date | None, end: date | None) -> dict[str, str]:
    found = {}
    if start:
        found["start"] = start.isoformat()
    if end:
        found["end"] = end.isoformat()
    return found


@router.get(
    "/funnel/{step}/records",
    tags=["funnel"],
    operation_id="get_funnel_step_records",
    response_class=Response,
    summary="The records behind one step of the funnel, with the funnel's filters",
)
def funnel_step_records(
    database: DatabaseDep,
    actor: CurrentActor,
    step: Annotated[str, Path(max_length=20, description=f"One of {', '.join(STEPS)}")],
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    owner_id: OptionalId = None,
    region_id: OptionalId = None,
    product_line_id: OptionalId = None,
    industry: Annotated[str | None, Query(max_length=80)] = None,
    cursor: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Response:
    """Leads, opportunities or accounts (repurchase and referral count accounts), newest first;
    ``next_cursor`` pages on."""
    filters = FunnelFilters(
        start=start,
        end=end,
        owner_id=owner_id,
        region_id=region_id,
        product_line_id=product_line_id,
        industry=industry,
    )
    with database.reading(actor) as session:
        return json_response(step_records(session, actor, step, filters=filters, cursor=cursor, limit=limit))


@router.get(
    "/alert-thresholds",
    tags=["alerts"],
    operation_id="list_alert_thresholds",
    response_class=Response,
    summary="Your alert thresholds (nobody else's)",
)
def list_alert_thresholds(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        return json_response({"items": [alerts.serialize(session, actor, row) for row in alerts.mine(session, actor)]})


@router.post(
    "/alert-thresholds",
    tags=["alerts"],
    operation_id="create_alert_threshold",
    status_code=201,
    response_class=Response,
    summary="Notify me when a metric of a scope falls below or rises above a value",
)
def create_alert_threshold(
    database: DatabaseDep, actor: CurrentActor, body: Annotated[alerts.ThresholdCreate, Body()]
) -> Response:
    """``scope`` fixes dashboard dimensions (``{"region": "3"}``); a rate's value is a fraction
    (0.25 for 25 %). Checked hourly by the worker, as you: your row scope, your field masks."""
    with database.writing(actor) as session:
        row = alerts.create(session, actor, body)
        response = json_response(alerts.serialize(session, actor, row), status_code=201)
        commit(session)
        return response


@router.delete(
    "/alert-thresholds/{threshold_id}",
    tags=["alerts"],
    operation_id="delete_alert_threshold",
    status_code=204,
    response_class=Response,
    summary="Delete one of your alert thresholds",
)
def delete_alert_threshold(
    database: DatabaseDep, actor: CurrentActor, threshold_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:
    with database.writing(actor) as session:
        alerts.delete(session, actor, threshold_id)
        commit(session)
        return Response(status_code=204)


@router.get(
    "/metrics",
    tags=["lineage"],
    operation_id="list_metrics",
    response_class=Response,
    summary="The published metrics and dashboards you may read",
)
def list_metrics(database: DatabaseDep, actor: CurrentActor) -> Response:
    require(actor, "funnel:read")
    published = metrics.registry()
    with database.reading(actor) as session:
        matrix = policy_of(session, actor)
    return json_response(
        {
            "metrics": [
                {"key": m.key, "name_zh": m.name_zh, "name_en": m.name_en, "unit": m.unit, "dashboards": m.dashboards}
                for m in published.metrics.values()
                if m.readable_by(actor.role, matrix)
            ],
            "dashboards": [
                {"key": d.key, "name_zh": d.name_zh, "name_en": d.name_en, "path": d.path}
                for d in published.dashboards.values()
            ],
        }
    )


@router.get(
    "/lineage/metric/{key}",
    tags=["lineage"],
    operation_id="metric_lineage",
    response_class=Response,
    summary="Where a metric comes from: source fields, transformation, refresh, owner, dashboards",
)
def metric_lineage(database: DatabaseDep, actor: CurrentActor, key: Annotated[str, Path(max_length=60)]) -> Response:
    with database.reading(actor) as session:
        return json_response(lineage.metric_lineage(session, actor, key))


@router.get(
    "/lineage/dashboard/{key}",
    tags=["lineage"],
    operation_id="dashboard_lineage",
    response_class=Response,
    summary="Exactly the source fields a dashboard reads, its metrics, refresh and owner",
)
def dashboard_lineage(database: DatabaseDep, actor: CurrentActor, key: Annotated[str, Path(max_length=60)]) -> Response:
    with database.reading(actor) as session:
        return json_response(lineage.dashboard_lineage(session, actor, key))
