"""Forecasting: an opportunity's win probability with its reasons; the bookings forecast, its accuracy
over time and the attribution of its deviations (read from stored snapshots, never fitted here).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from closeloop.forecasting import actions, attribution, bookings, opportunities, scorecards, signals

router = APIRouter()

OpportunityId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The opportunity's id")]


@router.get(
    "/opportunities/{opportunity_id}/win-probability",
    tags=["forecasting"],
    operation_id="get_opportunity_win_probability",
    response_class=Response,
    summary="An opportunity's win probability and its top reasons",
    description="The organization's calibrated model (retrained weekly on its closed deals); before one is "
    "trained, the historical win rate of the deal's stage. Reasons resting on a field your masks hide are "
    "left out; they are in your language (zh or en). An open deal past its expected close date has its "
    "probability lowered by the win rate of the organization's deals that closed as late (`past_due`: days, "
    "the model's probability, the odds ratio and the cohort), and that reason comes first.",
)
def win_probability(database: DatabaseDep, actor: CurrentActor, opportunity_id: OpportunityId) -> Response:
    with database.reading(actor) as session:
        answer = opportunities.win_probability(session, actor, opportunity_id, locale=actor.locale)
    return json_response(answer)


SnapshotId = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="A stored snapshot (default: the latest)")]
Granularity = Annotated[Literal["month", "quarter"], Query(description="month or quarter")]


@router.get(
    "/forecasts/bookings",
    tags=["forecasting"],
    operation_id="get_bookings_forecast",
    response_class=Response,
    summary="The bookings forecast by period and dimension, with 80 % intervals",
    description="Rows of the latest daily snapshot (or `snapshot_id`): per month or quarter and per owner, "
    "region or product line (or the total), the expected bookings with the 10th–90th percentile of the "
    "simulation, the run-rate for business not yet in the pipeline, and the commit / best case / pipeline "
    "categories. Needs forecasts:read and a readable opportunity.amount; a role with team or own reach sees "
    "the owner rows of the people in its reach only.",
)
def bookings_forecast(
    database: DatabaseDep,
    actor: CurrentActor,
    granularity: Granularity = "month",
    dimension: Annotated[
        Literal["total", "owner", "region", "product_line"], Query(description="What to break the forecast down by")
    ] = "total",
    snapshot_id: SnapshotId = None,
) -> Response:
    with database.reading(actor) as session:
        answer = bookings.forecast(
            session, actor, granularity=granularity, dimension=dimension, snapshot_id=snapshot_id
        )
    return json_response(answer)


@router.get(
    "/forecasts/bookings/accuracy",
    tags=["forecasting"],
    operation_id="get_bookings_forecast_accuracy",
    response_class=Response,
    summary="Each stored forecast of a period against what was booked",
    description="Per snapshot and period: expected value and interval against the actual bookings (to date "
    "while the period runs), the error, its rate and whether the actual fell inside the 80 % interval.",
)
def bookings_accuracy(database: DatabaseDep, actor: CurrentActor, granularity: Granularity = "month") -> Response:
    with database.reading(actor) as session:
        answer = bookings.accuracy(session, actor, granularity=granularity)
    return json_response(answer)


@router.get(
    "/forecasts/bookings/attribution",
    tags=["forecasting"],
    operation_id="get_bookings_forecast_attribution",
    response_class=Response,
    summary="Why the bookings of a period differ from a snapshot's forecast",
    description="The gap actual − forecast split over its drivers (lost accounts, owner changes, amount "
    "changes, close-date moves, new accounts), each with its share, and the unexplained remainder; the "
    "contributions add up to the gap.",
)
def bookings_attribution(
    database: DatabaseDep,
    actor: CurrentActor,
    period: Annotated[str, Query(min_length=7, max_length=7, pattern=r"^\d{4}-(\d{2}|Q[1-4])$")],
    snapshot_id: SnapshotId = None,
) -> Response:
    with database.reading(actor) as session:
        answer = attribution.attribution(session, actor, period=period, snapshot_id=snapshot_id, locale=actor.locale)
    return json_response(answer)


@router.get(
    "/forecasts/replenishment",
    tags=["forecasting"],
    operation_id="get_replenishment_suggestions",
    response_class=Response,
    summary="Replenishment suggestions per dealer and product",
    description="For every dealer (account in your reach) that reported its stock: the weekly demand forecast "
    "from its orders over the last `weeks` weeks, safety stock z·σ·√((lead + review)/7) at a 95 % service "
    "level, the order-up-to level and the suggested quantity max(0, ⌈order-up-to − on hand − on order⌉).",
)
def replenishment(
    database: DatabaseDep, actor: CurrentActor, weeks: Annotated[int, Query(ge=4, le=104)] = 13
) -> Response:
    with database.reading(actor) as session:
        answer = actions.suggestions(session, actor, weeks=weeks)
    return json_response(answer)


@router.get(
    "/forecasts/incentives",
    tags=["forecasting"],
    operation_id="get_incentive_allocation",
    response_class=Response,
    summary="An incentive pool split across regions by forecast upside",
    description="Each region receives pool × its upside ÷ the sum of upsides, upside being the top of the 80 % "
    "interval minus the expected bookings of the period (default: the current quarter) in the latest "
    "snapshot. The rule is returned with the split. Needs the whole organization in reach.",
)
def incentives(
    database: DatabaseDep,
    actor: CurrentActor,
    pool: Annotated[Decimal, Query(gt=0, lt=Decimal("1e13"), max_digits=15, decimal_places=2)],
    period: Annotated[str | None, Query(min_length=7, max_length=7, pattern=r"^\d{4}-(\d{2}|Q[1-4])$")] = None,
) -> Response:
    with database.reading(actor) as session:
        answer = actions.incentives(session, actor, pool=pool, period=period)
    return json_response(answer)


@router.get(
    "/forecasts/scorecards",
    tags=["forecasting"],
    operation_id="get_forecast_scorecards",
    response_class=Response,
    summary="Forecast-deviation rate per manager and period",
    description="For each finished period: the first snapshot taken in it against what each manager's team "
    "booked, and |actual − expected| ÷ expected.",
)
def scorecard(database: DatabaseDep, actor: CurrentActor, granularity: Granularity = "month") -> Response:
    with database.reading(actor) as session:
        answer = scorecards.deviation_by_manager(session, actor, granularity=granularity)
    return json_response(answer)


@router.get(
    "/scorecards/teams",
    tags=["forecasting", "quality"],
    operation_id="get_team_scorecards",
    response_class=Response,
    summary="Team scorecards: data-quality KPIs of each manager's team with history, next to its forecast deviation",
    description="One row per manager's team in your reach (a manager: their team; the sales VP: every team; a "
    "rep: one row with their own figures). Quality: completeness, contact-title freshness, stage-log "
    "completeness and duplicate rate of the records the team owns, from the latest scan and up to `history` "
    "earlier ones. Forecast: the team's deviation rate per finished period (needs forecasts:read and a "
    "readable opportunity.amount; otherwise `forecast_hidden` says why). Needs quality:read.",
)
def team_scorecards(
    database: DatabaseDep,
    actor: CurrentActor,
    granularity: Granularity = "month",
    history: Annotated[int, Query(ge=0, le=100, description="How many earlier scans to include")] = 12,
) -> Response:
    with database.reading(actor) as session:
        answer = scorecards.team_scorecard(session, actor, granularity=granularity, history=history)
    return json_response(answer)


@router.get(
    "/forecasts/data-sources",
    tags=["forecasting"],
    operation_id="get_forecast_data_sources",
    response_class=Response,
    summary="Which inputs of the forecasts arrived late or stopped updating",
    description="Per source (opportunities, activities, orders, dealer stock, snapshots): arrivals in the last "
    "7 days against the usual week, the latest arrival and a status (ok, late, stopped, no_data); dealers whose "
    "stock report is more than two weeks old.",
)
def data_sources(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        answer = scorecards.data_sources(session, actor)
    return json_response(answer)


@router.post(
    "/signals",
    tags=["forecasting", "automation"],
    operation_id="record_signals",
    status_code=201,
    response_class=Response,
    summary="Record inquiry-keyword signals (what accounts searched or asked about)",
    description="A JSON list of up to 1,000 objects `{account_id, keyword, occurred_at, source?, count?}` "
    "(`occurred_at`: an ISO date — taken as noon UTC — or date-time; `source` defaults to `api`, `count` to 1). "
    "All or nothing: a bad item is refused with 422 naming its index and field (`items.3.keyword`); an account "
    "of another organization is refused like an unknown one. Each signal is an outbox event `signal.recorded` "
    "that signal rules wake on. Needs signals:write (sales ops, admins — an integration uses an admin's token).",
)
def record_signals(
    database: DatabaseDep,
    actor: CurrentActor,
    items: Annotated[Any, Body(description="The signals, a JSON list")],
) -> Response:
    with database.unit_of_work(actor) as session:
        recorded = signals.record_signal_items(session, actor, items)
    return json_response({"recorded": recorded}, status_code=201)


ReservationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The reservation's id")]


@router.get(
    "/stock-reservations",
    tags=["forecasting", "automation"],
    operation_id="list_stock_reservations",
    response_class=Response,
    summary="Units of dealers' stock held for accounts (by the reserve_stock rule action)",
    description="Newest first, for the accounts in your reach; filter by `status` (active, released) and "
    "`account_id`. Cursor-paginated: pass the previous page's `next_cursor` as `cursor` (also in the `Link` "
    "header). Needs accounts:read.",
)
def list_stock_reservations(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    status: Annotated[Literal["active", "released"] | None, Query(description="active or released")] = None,
    account_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> Response:
    with database.reading(actor) as session:
        page = signals.list_reservations(
            session, actor, status=status, account_id=account_id, limit=limit, cursor=cursor
        )
    headers = {}
    if page.next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return json_response({"items": page.items, "next_cursor": page.next_cursor}, headers=headers)


@router.post(
    "/stock-reservations/{reservation_id}/release",
    tags=["forecasting", "automation"],
    operation_id="release_stock_reservation",
    response_class=Response,
    summary="Give a reservation's units back to the dealer's available stock",
    description="Audited (`stock_reservation.released`). 404 for a reservation of an account outside your "
    "reach, 409 when it is already released. Needs stock_reservations:release (managers up, admins).",
)
def release_stock_reservation(database: DatabaseDep, actor: CurrentActor, reservation_id: ReservationId) -> Response:
    with database.unit_of_work(actor) as session:
        answer = signals.release_visible(session, actor, reservation_id)
    return json_response(answer)
