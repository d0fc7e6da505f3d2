"""One search across accounts, contacts, leads and opportunities (characters, pinyin, initials)."""

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.crm import search as search_service

router = APIRouter()


@router.get(
    "/search",
    tags=["search"],
    operation_id="search",
    response_class=Response,
    summary="Search accounts, contacts, leads and opportunities by characters, pinyin or initials",
)
def search(
    database: DatabaseDep,
    actor: CurrentActor,
    q: Annotated[str, Query(description="What to look for: 协和, beijingxiehe, bjxh, Acme …")] = "",
    limit: Annotated[int, Query(ge=1, le=50, description="Hits per kind of record")] = 8,
) -> Response:
    """Hits grouped by kind of record, newest first with names starting with the query ahead,
    within your row scope; fields masked for you are neither matched nor returned."""
    with database.reading(actor) as session:
        groups = search_service.search(session, actor, q, limit=limit)
        return json_response({"query": q, "groups": [group.as_dict() for group in groups]})
