"""Change requests: the sign-off queue for schema changes (GOV-5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, etag, json_response
from closeloop.api.resources import RecordId
from closeloop.core.actor import Actor
from closeloop.core.pagination import MAX_LIMIT
from closeloop.crm import changerequests
from closeloop.crm.schemas import Schema
from closeloop.db.session import Database
from closeloop.governance.changes.models import ChangeRequest, ChangeStatus

router = APIRouter(tags=["change requests"])


class Rejection(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=1000, description="Why the change is turned down")]


class Rollback(Schema):
    reason: Annotated[str, Field(max_length=1000)] | None = None


def _answer(session: object, request: ChangeRequest, status_code: int = 200) -> Response:
    return json_response(
        changerequests.body(session, request),  # type: ignore[arg-type]
        status_code=status_code,
        headers={"ETag": etag(request.version)},
    )


@router.get(
    "/change-requests",
    operation_id="list_change_requests",
    summary="Schema change requests, newest first",
    response_class=Response,
)
def list_change_requests(
    database: DatabaseDep,
    actor: CurrentActor,
    status: ChangeStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    with database.reading(actor) as session:
        found = changerequests.list_requests(session, actor, status=status, limit=limit + 1, after_id=after_id)
        next_cursor = str(found[limit - 1].id) if len(found) > limit else None
        return json_response(
            {"items": [changerequests.body(session, r) for r in found[:limit]], "next_cursor": next_cursor}
        )


@router.get(
    "/change-requests/{record_id}",
    operation_id="get_change_request",
    summary="A change request with its impact and sign-offs",
    response_class=Response,
)
def get_change_request(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.reading(actor) as session:
        return _answer(session, changerequests.get_request(session, actor, record_id))


@router.post(
    "/change-requests/{record_id}/approve",
    operation_id="approve_change_request",
    summary="Sign off a change request (the last required sign-off applies it)",
    response_class=Response,
)
def approve_change_request(
    database: DatabaseDep, actor: CurrentActor, record_id: RecordId, expected_version: ExpectedVersion
) -> Response:
    return _decide(database, actor, changerequests.approve, record_id, expected_version)


def _decide(
    database: Database,
    actor: Actor,
    decision: Callable[..., ChangeRequest],
    record_id: int,
    expected_version: int | None,
    **options: Any,
) -> Response:
    with database.writing(actor) as session:
        request = decision(session, actor, record_id, expected_version=expected_version, **options)
        response = _answer(session, request)
        commit(session)
        return response


@router.post(
    "/change-requests/{record_id}/reject",
    operation_id="reject_change_request",
    summary="Turn a change request down, saying why",
    response_class=Response,
)
def reject_change_request(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[Rejection, Body()],
) -> Response:
    with database.writing(actor) as session:
        request = changerequests.reject(
            session, actor, record_id, reason=body.reason, expected_version=expected_version
        )
        response = _answer(session, request)
        commit(session)
        return response


@router.post(
    "/change-requests/{record_id}/cancel",
    operation_id="cancel_change_request",
    summary="Withdraw your pending change request",
    response_class=Response,
)
def cancel_change_request(
    database: DatabaseDep, actor: CurrentActor, record_id: RecordId, expected_version: ExpectedVersion
) -> Response:
    return _decide(database, actor, changerequests.cancel, record_id, expected_version)


@router.post(
    "/change-requests/{record_id}/rollback",
    operation_id="rollback_change_request",
    status_code=202,
    summary="Ask to undo an applied change (a new change request)",
    response_class=Response,
)
def rollback_change_request(
    database: DatabaseDep, actor: CurrentActor, record_id: RecordId, body: Annotated[Rollback, Body()]
) -> Response:
    with database.writing(actor) as session:
        request = changerequests.request_rollback(session, actor, record_id, reason=body.reason)
        response = _answer(session, request, status_code=202)
        commit(session)
        return response
