"""Opportunity services: the pipeline's records and their stage moves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import PreconditionFailed, ValidationFailed
from closeloop.crm import records
from closeloop.crm.enums import Stage
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine, StageChange
from closeloop.crm.opportunities.schemas import OpportunityCreate, OpportunityUpdate
from closeloop.crm.products.models import ProductLine
from closeloop.crm.records import Computed, FieldSpec, Kind, RecordType
from closeloop.db.functions import id_list, parse_id_list
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.audit import service as audit


def _product_line_ids_expression() -> ColumnElement[Any]:
    """The ids of an opportunity's product lines, as one value per opportunity row."""
    return (
        select(id_list(OpportunityProductLine.product_line_id))
        .where(OpportunityProductLine.opportunity_id == Opportunity.id)
        .scalar_subquery()
    )


def _product_line_ids(session: Session, actor: Actor, opportunity_id: int) -> list[int]:
    return parse_id_list(session.scalar(select(_product_line_ids_expression()).where(Opportunity.id == opportunity_id)))


OPPORTUNITIES: RecordType[Opportunity] = records.register(
    RecordType(
        noun="opportunity",
        plural="opportunities",
        model=Opportunity,
        read_fields=(
            "id",
            "name",
            "account_id",
            "contact_id",
            "stage",
            "amount",
            "currency",
            "margin",
            "expected_close_date",
            "opened_at",
            "closed_at",
            "stage_changed_at",
            "owner_id",
            "product_id",
            "lost_reason",
            "source_lead_id",
            "description",
            "external_ref",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "name": FieldSpec(Kind.STR, sortable=True),
            "account_id": FieldSpec(Kind.INT),
            "contact_id": FieldSpec(Kind.INT),
            "stage": FieldSpec(Kind.STR, tuple(Stage), sortable=True),
            "amount": FieldSpec(Kind.DECIMAL, sortable=True),
            "margin": FieldSpec(Kind.DECIMAL, sortable=True),
            "currency": FieldSpec(Kind.STR, sortable=False),
            "expected_close_date": FieldSpec(Kind.DATE, sortable=True),
            "opened_at": FieldSpec(Kind.DATETIME, sortable=True),
            "closed_at": FieldSpec(Kind.DATETIME, sortable=True),
            "stage_changed_at": FieldSpec(Kind.DATETIME, sortable=True),
            "owner_id": FieldSpec(Kind.INT),
            "product_id": FieldSpec(Kind.INT),
            "source_lead_id": FieldSpec(Kind.INT),
            "external_ref": FieldSpec(Kind.STR),
        },
        references={
            "account_id": "account",
            "contact_id": "contact",
            "owner_id": "user",
            "product_id": "product",
            "source_lead_id": "lead",
        },
        search_fields=("name", "external_ref"),
        computed={"product_line_ids": Computed(_product_line_ids_expression, parse_id_list)},
    )
)


def get_opportunity(session: Session, actor: Actor, *, opportunity_id: int) -> Opportunity:
    return records.get(session, actor, OPPORTUNITIES, opportunity_id, access=RowAccess.READ)


def _check_product_lines(session: Session, actor: Actor, line_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(line_ids))
    found = set(
        session.scalars(
            select(ProductLine.id).where(
                visibility_clause(actor, ProductLine, access=RowAccess.READ), ProductLine.id.in_(wanted)
            )
        )
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed.one("product_line_ids", f"no product line {missing[0]} that you can see", "not_found")
    return wanted


def _set_product_lines(session: Session, actor: Actor, opportunity: Opportunity, line_ids: list[int]) -> None:
    session.execute(
        sql_delete(OpportunityProductLine).where(
            tenant_clause(actor.organization_id, OpportunityProductLine),
            OpportunityProductLine.opportunity_id == opportunity.id,
        )
    )
    session.add_all(
        OpportunityProductLine(
            organization_id=actor.organization_id, opportunity_id=opportunity.id, product_line_id=line_id
        )
        for line_id in line_ids
    )


def _closing_fields(stage: Stage, lost_reason: str | None, at: datetime) -> dict[str, Any]:
    if stage is Stage.LOST and not lost_reason:
        raise ValidationFailed.one("lost_reason", "is required when an opportunity is lost", "required")
    if stage.is_closed:
        return {"closed_at": at, "lost_reason": lost_reason if stage is Stage.LOST else None}
    return {"closed_at": None, "lost_reason": None}


def create_opportunity(
    session: Session, actor: Actor, *, data: OpportunityCreate, source_lead_id: int | None = None
) -> Opportunity:
    """Create an opportunity and the first entry of its stage history."""
    records.require_write(actor, OPPORTUNITIES)
    values = data.model_dump(exclude_unset=True)
    if source_lead_id is not None:
        values["source_lead_id"] = source_lead_id
    line_ids = _check_product_lines(session, actor, values.pop("product_line_ids", None) or [])
    now = utcnow()
    opened_at = as_utc(values.get("opened_at") or now)
    stage = Stage(values.get("stage", Stage.PROSPECTING))
    values.update(opened_at=opened_at, stage=stage, stage_changed_at=opened_at)
    values.update(_closing_fields(stage, values.get("lost_reason"), now))
    opportunity = records.create(session, actor, OPPORTUNITIES, values, related={"product_line_ids": line_ids})
    if line_ids:
        _set_product_lines(session, actor, opportunity, line_ids)
    session.add(
        StageChange(
            organization_id=actor.organization_id,
            opportunity_id=opportunity.id,
            from_stage=None,
            to_stage=stage,
            changed_by_id=actor.user_id,
            changed_at=opened_at,
        )
    )
    return opportunity


def move_stage(
    session: Session,
    actor: Actor,
    *,
    opportunity_id: int,
    stage: Stage,
    lost_reason: str | None = None,
    expected_version: int | None = None,
) -> Opportunity:
    """Move an opportunity to ``stage``: writes the stage history (with time spent) and the audit entry.

    Moving to *lost* needs a lost reason; moving to *won* or *lost* closes the deal, reopening clears it.
    """
    opportunity = get_opportunity(session, actor, opportunity_id=opportunity_id)
    records.require_write(actor, OPPORTUNITIES)
    return _move(session, actor, opportunity, Stage(stage), lost_reason, expected_version, {})


def _move(
    session: Session,
    actor: Actor,
    opportunity: Opportunity,
    stage: Stage,
    lost_reason: str | None,
    expected_version: int | None,
    other_changes: dict[str, Any],
) -> Opportunity:
    previous = Stage(opportunity.stage)
    if expected_version is not None and opportunity.version != expected_version:
        raise PreconditionFailed()
    if stage == previous:
        if other_changes or lost_reason:
            changes = dict(other_changes)
            if lost_reason and stage is Stage.LOST:
                changes["lost_reason"] = lost_reason
            return records.update(
                session, actor, OPPORTUNITIES, opportunity, changes, expected_version=expected_version
            )
        return opportunity
    now = utcnow()
    changes = {**other_changes, "stage": stage, "stage_changed_at": now, **_closing_fields(stage, lost_reason, now)}
    duration = int((now - as_utc(opportunity.stage_changed_at)).total_seconds())
    records.update(
        session,
        actor,
        OPPORTUNITIES,
        opportunity,
        changes,
        expected_version=expected_version,
        action="opportunity.stage_changed",
    )
    session.add(
        StageChange(
            organization_id=actor.organization_id,
            opportunity_id=opportunity.id,
            from_stage=previous,
            to_stage=stage,
            changed_by_id=actor.user_id,
            changed_at=now,
            duration_seconds=max(duration, 0),
        )
    )
    session.flush()
    return opportunity


def update_opportunity(
    session: Session,
    actor: Actor,
    *,
    opportunity_id: int,
    data: OpportunityUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Opportunity:
    """Change an opportunity; a new stage goes through the same path as :func:`move_stage`."""
    opportunity = get_opportunity(session, actor, opportunity_id=opportunity_id)
    records.require_write(actor, OPPORTUNITIES)
    if expected_version is not None and opportunity.version != expected_version:
        raise PreconditionFailed()
    changes = data.model_dump(exclude_unset=True) if isinstance(data, OpportunityUpdate) else dict(data)
    line_ids = changes.pop("product_line_ids", None)
    current_lines: list[int] = []
    if line_ids is not None:
        line_ids = _check_product_lines(session, actor, line_ids)
        current_lines = _product_line_ids(session, actor, opportunity.id)
        if current_lines == line_ids:
            line_ids = None
        else:
            opportunity.updated_at = utcnow()  # the lines change: one version bump covers them and the fields
    stage = changes.pop("stage", None)
    lost_reason = changes.pop("lost_reason", None) if stage is not None else None
    if stage is not None:
        _move(session, actor, opportunity, Stage(stage), lost_reason, expected_version, changes)
    else:
        if "lost_reason" in changes and opportunity.stage != Stage.LOST:
            if changes["lost_reason"] is not None:
                raise ValidationFailed.one("lost_reason", "can only be set on a lost opportunity")
            del changes["lost_reason"]  # clearing what an open deal does not have changes nothing
        if "lost_reason" in changes and not changes["lost_reason"]:
            raise ValidationFailed.one("lost_reason", "may not be empty on a lost opportunity", "required")
        records.update(session, actor, OPPORTUNITIES, opportunity, changes, expected_version=expected_version)
    if line_ids is not None:
        _set_product_lines(session, actor, opportunity, line_ids)
        records.flush(session)
        audit.record(
            session,
            actor,
            "opportunity.updated",
            subject_type="opportunity",
            subject_id=opportunity.id,
            changes={"product_line_ids": [current_lines, line_ids]},
        )
    return opportunity


def delete_opportunity(
    session: Session, actor: Actor, *, opportunity_id: int, expected_version: int | None = None
) -> None:
    records.delete(
        session,
        actor,
        OPPORTUNITIES,
        get_opportunity(session, actor, opportunity_id=opportunity_id),
        expected_version=expected_version,
    )


def stage_history(session: Session, actor: Actor, *, opportunity_id: int) -> list[StageChange]:
    """The stage moves of a visible opportunity, oldest first."""
    opportunity = get_opportunity(session, actor, opportunity_id=opportunity_id)
    return list(
        session.scalars(
            select(StageChange)
            .where(tenant_clause(actor.organization_id, StageChange), StageChange.opportunity_id == opportunity.id)
            .order_by(StageChange.changed_at, StageChange.id)
        )
    )
