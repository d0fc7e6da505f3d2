"""The signed-in person's in-app notifications: list, mark one read, mark all read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.core.pagination import MAX_LIMIT
from closeloop.org import notifications

router = APIRouter(tags=["notifications"])


@router.get(
    "/notifications",
    operation_id="list_notifications",
    summary="Your notifications, newest first (only yours: nobody else reads them)",
    response_class=Response,
)
def list_notifications(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    unread: Annotated[bool, Query(description="only the unread ones")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    with database.reading(actor) as session:
        found, next_cursor = notifications.page(session, actor, unread_only=unread, limit=limit, cursor=cursor)
        body = {
            "items": [notifications.serialize(item) for item in found],
            "unread": notifications.unread_count(session, actor),
            "next_cursor": next_cursor,
        }
    headers = {}
    if next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return json_response(body, headers=headers)


@router.post(
    "/notifications/{notification_id}/read",
    operation_id="read_notification",
    summary="Mark one of your notifications read",
    response_class=Response,
)
def read_notification(
    database: DatabaseDep, actor: CurrentActor, notification_id: Annotated[int, Path(ge=1, lt=2**63)]
) -> Response:
    with database.writing(actor) as session:
        body = notifications.serialize(notifications.mark_read(session, actor, notification_id))
        commit(session)
    return json_response(body)


@router.post(
    "/notifications/read",
    operation_id="read_all_notifications",
    summary="Mark all your notifications read",
    response_class=Response,
)
def read_all_notifications(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.writing(actor) as session:
        count = notifications.mark_all_read(session, actor)
        commit(session)
    return json_response({"marked": count})
