"""Forecasting: an opportunity's win probability with its reasons.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.forecasting import opportunities

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
    "left out; they are in your language (zh or en).",
)
def win_probability(database: DatabaseDep, actor: CurrentActor, opportunity_id: OpportunityId) -> Response:
    with database.reading(actor) as session:
        answer = opportunities.win_probability(session, actor, opportunity_id, locale=actor.locale)
    return json_response(answer)
