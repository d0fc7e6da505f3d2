"""The data-quality loop: defects, scans on demand, KPIs.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.core.pagination import MAX_LIMIT
from closeloop.db.session import after_commit
from closeloop.integrations.importing.feeds import SOURCES
from closeloop.quality import freshness, kpis
from closeloop.quality import service as quality_service
from closeloop.quality.rules import RULES

router = APIRouter()

OptionalId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
ScanId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The scan's id")]


class FreshnessUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factor: Annotated[float, Field(ge=1, le=100)] | None = None
    max_silent_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    muted: bool = False


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full: bool = False


def enqueue_scan(organization_id: int, scan_id: int) -> None:
    """Hand the scan to the background worker (called once its row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_quality_scan(organization_id, scan_id)


@router.get(
    "/quality/rules",
    tags=["quality"],
    operation_id="list_quality_rules",
    response_class=Response,
    summary="The data-quality rules: id, severity, labels",
)
def quality_rules(actor: CurrentActor) -> Response:
    return json_response(
        {
            "items": [
                {
                    "id": rule.id,
                    "severity": rule.severity.value,
                    "label_en": rule.label_en,
                    "label_zh": rule.label_zh,
                    "subjects": list(rule.subjects),
                    "recheck": rule.recheck.value,
                }
                for rule in RULES
            ]
        }
    )


@router.get(
    "/quality/defects",
    tags=["quality"],
    operation_id="list_quality_defects",
    response_class=Response,
    summary="Defects of the records you may see, newest first",
    description="Filters: `rule`, `severity` (high, medium, low), `owner_id`, `subject_type`, `subject_id`, "
    "`status` (open — the default —, resolved, all). Cursor-paginated.",
)
def list_defects(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    rule: Annotated[str | None, Query(max_length=60)] = None,
    severity: Annotated[str | None, Query(max_length=10)] = None,
    owner_id: OptionalId = None,
    subject_type: Annotated[str | None, Query(max_length=40)] = None,
    subject_id: OptionalId = None,
    status: Annotated[str, Query(max_length=10)] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    filters = quality_service.DefectFilters(rule, severity, owner_id, subject_type, subject_id, status)
    with database.reading(actor) as session:
        page = quality_service.list_defects(session, actor, filters=filters, limit=limit, cursor=cursor)
    headers = {}
    if page.next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return json_response({"items": page.items, "next_cursor": page.next_cursor}, headers=headers)


@router.post(
    "/quality/scans",
    tags=["quality"],
    status_code=202,
    operation_id="request_quality_scan",
    response_class=Response,
    summary="Queue a data-quality scan of your organization",
    description="Incremental unless `full` is true. Answers 202 with the queued scan; poll "
    "`GET /quality/scans/{id}` for its outcome.",
)
def request_scan(database: DatabaseDep, actor: CurrentActor, body: Annotated[ScanRequest, Body()]) -> Response:
    with database.writing(actor) as session:
        scan = quality_service.request_scan(session, actor, full=body.full)
        scan_id, organization_id = scan.id, actor.organization_id
        after_commit(session, lambda: enqueue_scan(organization_id, scan_id))
        payload = quality_service.scan_body(scan)
        commit(session)
    return json_response(payload, status_code=202, headers={"Location": f"/api/v1/quality/scans/{scan_id}"})


@router.get(
    "/quality/scans/{scan_id}",
    tags=["quality"],
    operation_id="get_quality_scan",
    response_class=Response,
    summary="A data-quality scan: status and what it found",
)
def get_scan(database: DatabaseDep, actor: CurrentActor, scan_id: ScanId) -> Response:
    with database.reading(actor) as session:
        return json_response(quality_service.scan_body(quality_service.get_scan(session, actor, scan_id=scan_id)))


@router.get(
    "/quality/kpis",
    tags=["quality"],
    operation_id="get_quality_kpis",
    response_class=Response,
    summary="Data-quality KPIs per owner, team, region or the organization, with their history",
    description="`group_by`: owner, team, region or organization (the last two need a role that sees the "
    "whole organization). `history`: how many earlier scans to include.",
)
def get_kpis(
    database: DatabaseDep,
    actor: CurrentActor,
    group_by: Annotated[str, Query(max_length=20)] = "owner",
    history: Annotated[int, Query(ge=0, le=100)] = 12,
) -> Response:
    with database.reading(actor) as session:
        return json_response({"items": kpis.kpi_report(session, actor, group_by=group_by, history=history)})


@router.get(
    "/quality/freshness",
    tags=["quality"],
    operation_id="get_quality_freshness",
    response_class=Response,
    summary="Freshness of every field and import feed: stale, fresh, irregular or muted",
    description="Each field the audit trail shows changing and each import feed, with its usual gap between "
    "changes, its limit and how long it has been silent (see the architecture notes for the rule). "
    "`status` filters. Masked fields and record types you cannot read are left out.",
)
def get_freshness(
    database: DatabaseDep,
    actor: CurrentActor,
    status: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    with database.reading(actor) as session:
        return json_response({"items": freshness.report(session, actor, status=status, sources=SOURCES)})


@router.put(
    "/quality/freshness/{feed}",
    tags=["quality"],
    operation_id="configure_quality_freshness",
    response_class=Response,
    summary="Set how long one field or feed may stay silent (schema managers)",
    description="`factor` scales the learned usual gap; `max_silent_days` replaces the learned limit; `muted` "
    "stops the alerts. Audited as `freshness.configured`.",
)
def configure_freshness(
    database: DatabaseDep,
    actor: CurrentActor,
    feed: Annotated[str, Path(max_length=110)],
    body: Annotated[FreshnessUpdate, Body()],
) -> Response:
    with database.writing(actor) as session:
        payload = freshness.configure(
            session,
            actor,
            feed=feed,
            factor=body.factor,
            max_silent_days=body.max_silent_days,
            muted=body.muted,
            sources=SOURCES,
        )
        commit(session)
    return json_response(payload)
