"""The closed-loop funnel and the organization's audit trail."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.responses import Response

import closeloop.cash  # noqa: F401 - registers the collections basis of the funnel's won money
from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.crm import records
from closeloop.crm.funnel.service import FunnelFilters, MoneyBasis, measure_funnel
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.audit.service import entry_body
from closeloop.governance.permissions import require

router = APIRouter()

OptionalId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@router.get(
    "/funnel",
    tags=["funnel"],
    operation_id="get_funnel",
    response_class=Response,
    summary="The closed loop: lead → opportunity → won → repurchase → referral",
)
def funnel(
    database: DatabaseDep,
    actor: CurrentActor,
    start: Annotated[date | None, Query(description="First day of the period (inclusive)")] = None,
    end: Annotated[date | None, Query(description="Last day of the period (inclusive)")] = None,
    owner_id: OptionalId = None,
    region_id: OptionalId = None,
    product_line_id: OptionalId = None,
    industry: Annotated[str | None, Query(max_length=80)] = None,
    basis: Annotated[
        MoneyBasis, Query(description="The won money: bookings (won amounts) or collections (approved, CN-3)")
    ] = MoneyBasis.BOOKINGS,
) -> Response:
    """Counts, conversion from the previous step, and median days between steps, within your row scope;
    the won step carries the won money on the chosen basis."""
    with database.reading(actor) as session:
        filters = FunnelFilters(
            start=start,
            end=end,
            owner_id=owner_id,
            region_id=region_id,
            product_line_id=product_line_id,
            industry=industry,
        )
        return json_response(measure_funnel(session, actor, filters=filters, basis=basis).as_dict())


@router.get(
    "/audit",
    tags=["audit"],
    operation_id="list_audit_entries",
    response_class=Response,
    summary="The organization's audit trail, newest first",
)
def audit_entries(
    database: DatabaseDep,
    actor: CurrentActor,
    action: Annotated[str | None, Query(max_length=80)] = None,
    subject_type: Annotated[str | None, Query(max_length=40)] = None,
    subject_id: OptionalId = None,
    actor_user_id: OptionalId = None,
    before_seq: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    with database.reading(actor) as session:
        require(actor, "audit:read")
        statement = select(AuditEntry).where(tenant_clause(actor.organization_id, AuditEntry))
        if action:
            statement = statement.where(AuditEntry.action == action)
        if subject_type:
            statement = statement.where(AuditEntry.subject_type == subject_type)
        if subject_id is not None:
            statement = statement.where(AuditEntry.subject_id == subject_id)
        if actor_user_id is not None:
            statement = statement.where(AuditEntry.actor_user_id == actor_user_id)
        if before_seq is not None:
            statement = statement.where(AuditEntry.seq < before_seq)
        entries = list(session.scalars(statement.order_by(AuditEntry.seq.desc()).limit(limit)))
        hidden: dict[str, frozenset[str]] = {}
        for noun in {entry.subject_type for entry in entries}:
            hidden[noun] = records.masked(session, actor, noun)
        items = [body for entry in entries if (body := entry_body(entry, hidden[entry.subject_type])) is not None]
        next_cursor = str(entries[-1].seq) if len(entries) == limit else None
        return json_response({"items": items, "next_cursor": next_cursor})
