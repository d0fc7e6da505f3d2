"""The compliance checker: check a draft, scan logged activities, the supervisors' review queue.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import AwareDatetime, ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.assistant.compliance import service as compliance
from closeloop.crm.schemas import Schema
from closeloop.db.session import after_commit

router = APIRouter()

ScanId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The scan's id")]
ReviewId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The review's id")]


class CheckRequest(Schema):
    # the text as sent: findings' offsets count in the caller's own copy (a pasted mail's leading newline too)
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(
        description=f"The draft, 1 to {compliance.MAX_TEXT} characters; a longer or blank one is refused (422 "
        "naming `text`), never cut"
    )
    lang: Literal["zh", "en"] | None = None
    product_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    outgoing: bool = Field(default=False, description="The draft is about to be sent: a level-3 finding opens a review")


class ScanRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(default=None, description="Only activities that occurred from then on")


class Decision(Schema):
    model_config = ConfigDict(extra="forbid")

    #: why a rejected message may not go out (required to reject)
    reason: Annotated[str, Field(max_length=2000)] | None = None
    #: why a message with a level-3 finding may go out all the same (required to approve one)
    comment: Annotated[str, Field(max_length=2000)] | None = None


def enqueue_scan(organization_id: int, scan_id: int) -> None:
    """Hand the scan to the background worker (called once its row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_compliance_scan(organization_id, scan_id)


@router.post(
    "/compliance/check",
    tags=["compliance"],
    operation_id="check_compliance",
    response_class=Response,
    summary="Check a text against the regulation rule packs",
    description="Answers the findings (start, end, span, level 1–3, category, citation, rewrite, "
    "explanation). With `product_id`, delivery promises are held against the product's lead time; "
    "with `outgoing`, a level-3 finding sends the draft to your manager's review queue.",
)
def check(database: DatabaseDep, actor: CurrentActor, body: Annotated[CheckRequest, Body()]) -> Response:
    with database.writing(actor) as session:
        findings = compliance.check_text(session, actor, body.text, lang=body.lang, product_id=body.product_id)
        review = compliance.submit_outgoing(session, actor, body.text, findings) if body.outgoing else None
        payload = {
            "findings": [compliance.finding_body(finding) for finding in findings],
            "review_id": review.id if review else None,
        }
        commit(session)
    return json_response(payload)


@router.post(
    "/compliance/scans",
    tags=["compliance"],
    status_code=202,
    operation_id="request_compliance_scan",
    response_class=Response,
    summary="Queue a compliance scan of the logged activities",
    description="Checks the subject and notes of every activity (from `since` when given) through the task "
    "queue; findings are stored per activity and outgoing messages with a level-3 finding go to review. "
    "Answers 202; poll `GET /compliance/scans/{id}`.",
)
def request_scan(database: DatabaseDep, actor: CurrentActor, body: Annotated[ScanRequest, Body()]) -> Response:
    with database.writing(actor) as session:
        scan = compliance.request_scan(session, actor, since=body.since)
        scan_id, organization_id = scan.id, actor.organization_id
        after_commit(session, lambda: enqueue_scan(organization_id, scan_id))
        payload = compliance.scan_body(scan)
        commit(session)
    return json_response(payload, status_code=202, headers={"Location": f"/api/v1/compliance/scans/{scan_id}"})


@router.get(
    "/compliance/scans/{scan_id}",
    tags=["compliance"],
    operation_id="get_compliance_scan",
    response_class=Response,
    summary="A compliance scan and its counts",
)
def get_scan(database: DatabaseDep, actor: CurrentActor, scan_id: ScanId) -> Response:
    with database.reading(actor) as session:
        return json_response(compliance.scan_body(compliance.get_scan(session, actor, scan_id)))


@router.get(
    "/compliance/findings",
    tags=["compliance"],
    operation_id="list_compliance_findings",
    response_class=Response,
    summary="Stored findings of the activities you may see, newest first",
    description="Filters: `activity_id`, `min_level`. A phrase found in a field you may not read is "
    "answered as `span: null`.",
)
def list_findings(
    database: DatabaseDep,
    actor: CurrentActor,
    activity_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    min_level: Annotated[int, Query(ge=1, le=3)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    with database.reading(actor) as session:
        items = compliance.list_findings(session, actor, activity_id=activity_id, min_level=min_level, limit=limit)
    return json_response({"items": items})


@router.get(
    "/compliance/reviews",
    tags=["compliance"],
    operation_id="list_compliance_reviews",
    response_class=Response,
    summary="The review queue: outgoing messages with level-3 findings, of the reps in your reach",
    description="`status`: pending (default), approved, rejected or all.",
)
def list_reviews(
    database: DatabaseDep,
    actor: CurrentActor,
    status: Annotated[str, Query(max_length=10)] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    with database.reading(actor) as session:
        reviews = compliance.list_reviews(session, actor, status=None if status == "all" else status, limit=limit)
        items = [compliance.review_body(session, actor, review) for review in reviews]
    return json_response({"items": items})


def _decide(
    database: DatabaseDep, actor: CurrentActor, review_id: int, approve: bool, reason: str | None, comment: str | None
) -> Response:
    with database.writing(actor) as session:
        review = compliance.decide_review(session, actor, review_id, approve=approve, reason=reason, comment=comment)
        payload = compliance.review_body(session, actor, review)
        commit(session)
    return json_response(payload)


@router.post(
    "/compliance/reviews/{review_id}/approve",
    tags=["compliance"],
    operation_id="approve_compliance_review",
    response_class=Response,
    summary="Approve a pending review (the message may go out as written)",
)
def approve(
    database: DatabaseDep, actor: CurrentActor, review_id: ReviewId, body: Annotated[Decision, Body()]
) -> Response:
    return _decide(database, actor, review_id, True, body.reason, body.comment)


@router.post(
    "/compliance/reviews/{review_id}/reject",
    tags=["compliance"],
    operation_id="reject_compliance_review",
    response_class=Response,
    summary="Reject a pending review, with a reason for the rep",
)
def reject(
    database: DatabaseDep, actor: CurrentActor, review_id: ReviewId, body: Annotated[Decision, Body()]
) -> Response:
    return _decide(database, actor, review_id, False, body.reason, body.comment)
