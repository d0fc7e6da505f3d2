"""Approvals (CN-4, 审批流): the flows sales ops keep, and the approvals people submit and decide.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, etag, json_response
from closeloop.approvals import flows
from closeloop.approvals import service as approvals
from closeloop.core.pagination import MAX_LIMIT
from closeloop.crm.schemas import Schema

router = APIRouter(tags=["approvals"])

FlowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The flow's id")]
ApprovalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The approval's id")]
UserId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Comment = Annotated[str, Field(max_length=2000)] | None
Chosen = dict[Annotated[str, Field(pattern=r"^[0-9]{1,2}$")], list[UserId]] | None


class FlowChange(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    is_enabled: bool | None = None
    department_ids: list[UserId] | None = None
    definition: dict[str, Any] | None = None
    missing_approver: Literal["skip", "admin", "refuse"] | None = None
    fallback_role: Annotated[str, Field(max_length=32)] | None = None
    skip_submitter: bool | None = None


class FlowCreate(FlowChange):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    record_type: Annotated[str, Field(min_length=1, max_length=40)]
    definition: dict[str, Any]


class Submission(Schema):
    model_config = ConfigDict(extra="forbid")

    record_type: Annotated[str, Field(min_length=1, max_length=40)]
    record_id: UserId | None = None
    details: dict[str, Any] | None = None
    chosen_approvers: Chosen = None
    comment: Comment = None


class Resubmission(Schema):
    model_config = ConfigDict(extra="forbid")

    details: dict[str, Any] | None = None
    chosen_approvers: Chosen = None
    comment: Comment = None


class Decision(Schema):
    model_config = ConfigDict(extra="forbid")

    comment: Comment = None


class Rejection(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class AddedApprover(Schema):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    position: Literal["before", "after"]
    comment: Comment = None


# --- flows -------------------------------------------------------------------------------------------


@router.get("/approval-flows", operation_id="list_approval_flows", summary="Approval flows", response_class=Response)
def list_flows(
    database: DatabaseDep,
    actor: CurrentActor,
    record_type: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    with database.reading(actor) as session:
        items = [
            flows.labelled_flow(flow, actor.locale)
            for flow in flows.list_flows(session, actor, record_type=record_type)
        ]
    return json_response({"items": items})


@router.post(
    "/approval-flows",
    operation_id="create_approval_flow",
    status_code=201,
    summary="Create an approval flow (sales ops)",
    response_class=Response,
)
def create_flow(database: DatabaseDep, actor: CurrentActor, body: Annotated[FlowCreate, Body()]) -> Response:
    with database.writing(actor) as session:
        flow = flows.create_flow(session, actor, body.model_dump(exclude_unset=True))
        payload = flows.labelled_flow(flow, actor.locale)
        commit(session)
    return json_response(
        payload, status_code=201, headers={"Location": f"/api/v1/approval-flows/{flow.id}", "ETag": etag(flow.version)}
    )


@router.get(
    "/approval-flows/{flow_id}", operation_id="get_approval_flow", summary="One approval flow", response_class=Response
)
def get_flow(database: DatabaseDep, actor: CurrentActor, flow_id: FlowId) -> Response:
    with database.reading(actor) as session:
        flow = flows.get_flow(session, actor, flow_id)
        payload = flows.labelled_flow(flow, actor.locale)
    return json_response(payload, headers={"ETag": etag(flow.version)})


@router.patch(
    "/approval-flows/{flow_id}",
    operation_id="update_approval_flow",
    summary="Change an approval flow (a new definition is a new revision)",
    response_class=Response,
)
def update_flow(
    database: DatabaseDep,
    actor: CurrentActor,
    flow_id: FlowId,
    body: Annotated[FlowChange, Body()],
    expected_version: ExpectedVersion,
) -> Response:
    with database.writing(actor) as session:
        flow = flows.update_flow(
            session, actor, flow_id, body.model_dump(exclude_unset=True), expected_version=expected_version
        )
        payload = flows.labelled_flow(flow, actor.locale)
        commit(session)
    return json_response(payload, headers={"ETag": etag(flow.version)})


@router.delete(
    "/approval-flows/{flow_id}", operation_id="delete_approval_flow", status_code=204, summary="Delete a flow"
)
def delete_flow(database: DatabaseDep, actor: CurrentActor, flow_id: FlowId) -> Response:
    with database.writing(actor) as session:
        flows.delete_flow(session, actor, flow_id)
        commit(session)
    return Response(status_code=204)


# --- approvals ---------------------------------------------------------------------------------------


@router.get("/approvals", operation_id="list_approvals", summary="Your approvals", response_class=Response)
def list_approvals(
    database: DatabaseDep,
    actor: CurrentActor,
    box: Annotated[
        Literal["to_approve", "submitted", "cc", "all"],
        Query(description="to_approve: waiting for you; submitted: by you; cc: copied to you; all: sales ops"),
    ] = "to_approve",
    status: Annotated[Literal["pending", "approved", "rejected", "withdrawn"] | None, Query()] = None,
    record_type: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    with database.reading(actor) as session:
        rows, next_cursor = approvals.inbox(
            session, actor, box=box, status=status, record_type=record_type, limit=limit, cursor=cursor
        )
        items = [approvals.summary(row, actor.locale) for row in rows]
    return json_response({"items": items, "next_cursor": next_cursor})


@router.post(
    "/approvals",
    operation_id="submit_approval",
    status_code=201,
    summary="Submit a record for approval",
    response_class=Response,
)
def submit(database: DatabaseDep, actor: CurrentActor, body: Annotated[Submission, Body()]) -> Response:
    with database.writing(actor) as session:
        approval = approvals.submit(
            session, actor, record_type=body.record_type, record_id=body.record_id, details=body.details,
            chosen_approvers=body.chosen_approvers, comment=body.comment,
        )  # fmt: skip
        payload = approvals.detail(session, actor, approval)
        commit(session)
    return json_response(payload, status_code=201, headers={"Location": f"/api/v1/approvals/{approval.id}"})


@router.get("/approvals/{approval_id}", operation_id="get_approval", summary="One approval", response_class=Response)
def get_approval(database: DatabaseDep, actor: CurrentActor, approval_id: ApprovalId) -> Response:
    with database.reading(actor) as session:
        payload = approvals.detail(session, actor, approvals.get_approval(session, actor, approval_id))
    return json_response(payload)


def _answer(database: Any, actor: Any, approval_id: int, act: Any, status_code: int = 200) -> Response:
    with database.writing(actor) as session:
        approval = act(session)
        payload = approvals.detail(session, actor, approval)
        commit(session)
    return json_response(payload, status_code=status_code)


@router.post("/approvals/{approval_id}/approve", operation_id="approve_approval", response_class=Response)
def approve(
    database: DatabaseDep, actor: CurrentActor, approval_id: ApprovalId, body: Annotated[Decision | None, Body()] = None
) -> Response:
    comment = body.comment if body else None
    return _answer(database, actor, approval_id, lambda s: approvals.approve(s, actor, approval_id, comment=comment))


@router.post("/approvals/{approval_id}/reject", operation_id="reject_approval", response_class=Response)
def reject(
    database: DatabaseDep, actor: CurrentActor, approval_id: ApprovalId, body: Annotated[Rejection, Body()]
) -> Response:
    return _answer(database, actor, approval_id, lambda s: approvals.reject(s, actor, approval_id, reason=body.reason))


@router.post(
    "/approvals/{approval_id}/add-approver",
    operation_id="add_approver",
    summary="加签: ask someone to approve before or after you",
    response_class=Response,
)
def add_approver(
    database: DatabaseDep, actor: CurrentActor, approval_id: ApprovalId, body: Annotated[AddedApprover, Body()]
) -> Response:
    return _answer(
        database, actor, approval_id,
        lambda s: approvals.add_approver(s, actor, approval_id, user_id=body.user_id, position=body.position,
                                         comment=body.comment),
    )  # fmt: skip


@router.post("/approvals/{approval_id}/withdraw", operation_id="withdraw_approval", response_class=Response)
def withdraw(
    database: DatabaseDep, actor: CurrentActor, approval_id: ApprovalId, body: Annotated[Decision | None, Body()] = None
) -> Response:
    comment = body.comment if body else None
    return _answer(database, actor, approval_id, lambda s: approvals.withdraw(s, actor, approval_id, comment=comment))


@router.post(
    "/approvals/{approval_id}/resubmit",
    operation_id="resubmit_approval",
    status_code=201,
    summary="Submit a rejected or withdrawn approval again (a new round, a fresh snapshot)",
    response_class=Response,
)
def resubmit(
    database: DatabaseDep,
    actor: CurrentActor,
    approval_id: ApprovalId,
    body: Annotated[Resubmission | None, Body()] = None,
) -> Response:
    data = body or Resubmission()
    return _answer(
        database, actor, approval_id,
        lambda s: approvals.resubmit(s, actor, approval_id, details=data.details,
                                     chosen_approvers=data.chosen_approvers, comment=data.comment),
        status_code=201,
    )  # fmt: skip
