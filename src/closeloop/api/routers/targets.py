"""Targets, attainment and leaderboards (CN-6, 目标/达成/排行榜).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.core.clock import utcnow
from closeloop.crm.schemas import Schema
from closeloop.targets import service as targets
from closeloop.targets.models import Metric, TargetScope

router = APIRouter(tags=["targets"])

Year = Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")]
Month = Annotated[int | None, Query(ge=1, le=12, description="empty: the whole year")]


class TargetSet(Schema):
    model_config = ConfigDict(extra="forbid")

    scope: TargetScope
    department_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    user_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    metric: Metric
    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int, Field(ge=1, le=12)] | None = None
    value: Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2, examples=["1200000.00"])]


@router.get(
    "/targets",
    operation_id="list_targets",
    summary="The period's targets you may see, each with its attainment (mine: yours and your department's)",
    response_class=Response,
)
def list_targets(
    database: DatabaseDep, actor: CurrentActor, year: Year = None, month: Month = None, mine: bool = False
) -> Response:
    year = year or utcnow().year
    with database.reading(actor) as session:
        found = (
            targets.my_attainment(session, actor, year=year, month=month)
            if mine
            else targets.attainment(session, actor, year=year, month=month)
        )
        items = [a.as_dict() for a in found]
    return json_response({"year": year, "month": month, "items": items})


@router.put(
    "/targets",
    operation_id="set_target",
    summary="Set the target of the company, a department or a person for a metric and period (sales ops)",
    response_class=Response,
)
def set_target(database: DatabaseDep, actor: CurrentActor, body: Annotated[TargetSet, Body()]) -> Response:
    with database.writing(actor) as session:
        target = targets.set_target(session, actor, **body.model_dump())
        payload = targets.serialize_target(target)
        commit(session)
    return json_response(payload)


@router.delete(
    "/targets/{target_id}", operation_id="delete_target", summary="Remove a target (sales ops)", status_code=204
)
def delete_target(
    database: DatabaseDep, actor: CurrentActor, target_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:
    with database.writing(actor) as session:
        targets.delete_target(session, actor, target_id=target_id)
        commit(session)
    return Response(status_code=204)


@router.get(
    "/leaderboards",
    operation_id="get_leaderboard",
    summary="People or departments ranked by a metric over the records in your reach",
    response_class=Response,
)
def get_leaderboard(
    database: DatabaseDep,
    actor: CurrentActor,
    metric: Metric = Metric.CONTRACT_AMOUNT,
    by: Annotated[Literal["user", "department"], Query()] = "user",
    year: Year = None,
    month: Month = None,
) -> Response:
    year = year or utcnow().year
    with database.reading(actor) as session:
        standings = targets.leaderboard(session, actor, metric=metric, year=year, month=month, by=by)
        items = [s.as_dict() for s in standings]
    return json_response({"metric": metric.value, "by": by, "year": year, "month": month, "items": items})
