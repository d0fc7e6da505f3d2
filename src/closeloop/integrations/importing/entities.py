"""Per-entity import rules: the Create schema that validates a row, the natural keys that find the
record a row describes, and the service rules that imports must apply exactly as the API does
(an account's size from its head count, a contact's title confirmed today, a lost deal's reason,
stage history, an activity's reply).

Rules receive the row's validated values and change them in place, or raise
:class:`~closeloop.core.errors.ValidationFailed` naming the field — as the services do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc
from closeloop.core.errors import ValidationFailed
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.activities.schemas import ActivityCreate
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.crm.contacts.schemas import ContactCreate
from closeloop.crm.contacts.service import CONTACTS
from closeloop.crm.enums import CompanySize, Direction, LeadStatus, Stage
from closeloop.crm.leads.schemas import LeadCreate
from closeloop.crm.leads.service import LEADS
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.products.schemas import ProductCreate, ProductLineCreate
from closeloop.crm.products.service import PRODUCT_LINES, PRODUCTS
from closeloop.crm.records import RecordType
from closeloop.crm.tickets.schemas import TicketCreate
from closeloop.crm.tickets.service import TICKETS
from closeloop.integrations.importing.fields import ImportField, fields_of


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """One row of an opportunity's stage history, as an import reconstructs it."""

    from_stage: Stage | None
    to_stage: Stage
    at: datetime
    #: seconds spent in ``from_stage``; ``None`` when the source does not say
    duration_seconds: int | None


StageHistory = Callable[[Stage, datetime, datetime | None], list[HistoryStep]]


def default_stage_history(stage: Stage, opened_at: datetime, closed_at: datetime | None) -> list[HistoryStep]:
    """An open deal entered its stage when it opened (as the API records a new deal); a closed one
    was open from ``opened_at`` (in *prospecting*, the first stage) until it closed."""
    if not stage.is_closed or closed_at is None:
        return [HistoryStep(None, stage, opened_at, None)]
    return [
        HistoryStep(None, Stage.PROSPECTING, opened_at, None),
        HistoryStep(Stage.PROSPECTING, stage, closed_at, max(int((closed_at - opened_at).total_seconds()), 0)),
    ]


@dataclass(frozen=True)
class ImportOptions:
    """Choices a caller (such as the Maven importer) makes for a whole import."""

    stage_history: StageHistory = default_stage_history


@dataclass
class RowContext:
    """What the rules of one row may use, and what they hand to the writer."""

    actor: Actor
    now: datetime
    options: ImportOptions
    extra: dict[str, Any] = field(default_factory=dict)
    action: str | None = None

    @property
    def today(self) -> date:
        return self.now.date()


#: (validated values of the row) → adjusted in place
CreateRule = Callable[[dict[str, Any], RowContext], None]
#: (changes, validated values of the row, the record as stored) → changes adjusted in place
UpdateRule = Callable[[dict[str, Any], Mapping[str, Any], Mapping[str, Any], RowContext], None]


@dataclass(frozen=True)
class NaturalKey:
    """Attributes that identify a record. A complete key needs every attribute present; a partial
    key (``complete=False``) needs its first and matches missing parts against empty columns."""

    attributes: tuple[str, ...]
    complete: bool = True

    @property
    def label(self) -> str:
        return " + ".join(a.removesuffix("_id").replace("_", " ") for a in self.attributes)


@dataclass(frozen=True)
class EntitySpec:
    name: str
    record_type: RecordType[Any]
    create_schema: type[BaseModel]
    natural_keys: tuple[NaturalKey, ...]
    on_create: CreateRule | None = None
    on_update: UpdateRule | None = None

    @property
    def fields(self) -> tuple[ImportField, ...]:
        return fields_of(self.name)

    @property
    def noun(self) -> str:
        return self.record_type.noun

    @property
    def table(self) -> Table:
        table: Table = self.record_type.model.__table__
        return table


# --- rules ------------------------------------------------------------------------------------


def _account_create(values: dict[str, Any], ctx: RowContext) -> None:
    if values.get("size") is None and values.get("employees") is not None:
        values["size"] = CompanySize.from_employees(values["employees"])


def _account_update(
    changes: dict[str, Any], given: Mapping[str, Any], existing: Mapping[str, Any], ctx: RowContext
) -> None:
    if changes.get("parent_account_id") is not None and changes["parent_account_id"] == existing["id"]:
        raise ValidationFailed.one("parent_account_id", "an account cannot be its own parent")
    if given.get("size") is None and changes.get("employees") is not None:
        size = CompanySize.from_employees(changes["employees"])
        if size != existing.get("size"):
            changes["size"] = size


def _contact_create(values: dict[str, Any], ctx: RowContext) -> None:
    if values.get("title") and "title_confirmed_on" not in values:
        values["title_confirmed_on"] = ctx.today


def _contact_update(
    changes: dict[str, Any], given: Mapping[str, Any], existing: Mapping[str, Any], ctx: RowContext
) -> None:
    if changes.get("title") and "title_confirmed_on" not in given:
        changes["title_confirmed_on"] = ctx.today


def _lead_create(values: dict[str, Any], ctx: RowContext) -> None:
    values.setdefault("received_at", ctx.now)
    if values.get("owner_id") is not None:
        values.setdefault("status", LeadStatus.WORKING)


def _closing(stage: Stage, lost_reason: str | None, closed_at: datetime | None, ctx: RowContext) -> dict[str, Any]:
    if stage is Stage.LOST and not lost_reason:
        raise ValidationFailed.one("lost_reason", "is required when an opportunity is lost", "required")
    if stage.is_closed:
        return {
            "closed_at": as_utc(closed_at) if closed_at else ctx.now,
            "lost_reason": lost_reason if stage is Stage.LOST else None,
        }
    if closed_at is not None:
        raise ValidationFailed.one("closed_at", f"only a won or lost opportunity has a close date (stage: {stage})")
    return {"closed_at": None, "lost_reason": None}


def _opportunity_create(values: dict[str, Any], ctx: RowContext) -> None:
    stage = Stage(values.get("stage", Stage.PROSPECTING))
    opened_at = as_utc(values.get("opened_at") or ctx.now)
    closing = _closing(stage, values.get("lost_reason"), values.pop("closed_at", None), ctx)
    closed_at = closing["closed_at"]
    if closed_at is not None and closed_at < opened_at:
        raise ValidationFailed.one("closed_at", "is before the opportunity opened")
    values.update(closing, stage=stage, opened_at=opened_at, stage_changed_at=closed_at or opened_at)
    ctx.extra["history"] = ctx.options.stage_history(stage, opened_at, closed_at)
    line_ids = values.pop("product_line_ids", None)
    if line_ids:
        ctx.extra["product_line_ids"] = sorted(set(line_ids))


def _opportunity_update(
    changes: dict[str, Any], given: Mapping[str, Any], existing: Mapping[str, Any], ctx: RowContext
) -> None:
    changes.pop("product_line_ids", None)
    line_ids = given.get("product_line_ids")
    if line_ids is not None:
        ctx.extra["product_line_ids"] = sorted(set(line_ids))
    current = Stage(existing["stage"])
    if "stage" in changes:
        stage = Stage(changes["stage"])
        closing = _closing(stage, given.get("lost_reason"), given.get("closed_at"), ctx)
        at = closing["closed_at"] or ctx.now
        changes.update(closing, stage=stage, stage_changed_at=at)
        duration = max(int((at - as_utc(existing["stage_changed_at"])).total_seconds()), 0)
        ctx.extra["history"] = [HistoryStep(current, stage, at, duration)]
        ctx.action = "opportunity.stage_changed"
        for name in ("closed_at", "lost_reason"):
            if changes[name] == existing[name]:
                del changes[name]
        return
    if "lost_reason" in changes and current is not Stage.LOST:
        raise ValidationFailed.one("lost_reason", "can only be set on a lost opportunity")
    if "closed_at" in changes and not current.is_closed:
        raise ValidationFailed.one("closed_at", f"only a won or lost opportunity has a close date (stage: {current})")


def _check_reply(values: Mapping[str, Any]) -> None:
    """As the activity service checks: replies are for outbound interactions, after them."""
    if values.get("is_replied") is not None and values.get("direction") == Direction.INBOUND:
        raise ValidationFailed.one("is_replied", "applies to outbound interactions only")
    replied_at, occurred_at = values.get("replied_at"), values.get("occurred_at")
    if replied_at is not None and occurred_at is not None and as_utc(replied_at) < as_utc(occurred_at):
        raise ValidationFailed.one("replied_at", "is before the interaction itself")


def _activity_create(values: dict[str, Any], ctx: RowContext) -> None:
    values.setdefault("occurred_at", ctx.now)
    values.setdefault("direction", Direction.OUTBOUND)
    if values.get("replied_at") is not None:
        values.setdefault("is_replied", True)
    _check_reply(values)


def _activity_update(
    changes: dict[str, Any], given: Mapping[str, Any], existing: Mapping[str, Any], ctx: RowContext
) -> None:
    if changes.get("replied_at") is not None and "is_replied" not in given:
        changes["is_replied"] = True
    merged = {name: existing[name] for name in ("direction", "is_replied", "replied_at", "occurred_at")}
    merged.update(changes)
    _check_reply(merged)


def _ticket_create(values: dict[str, Any], ctx: RowContext) -> None:
    values.setdefault("opened_at", ctx.now)


ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec(
            "accounts",
            ACCOUNTS,
            AccountCreate,
            (NaturalKey(("external_ref",)), NaturalKey(("name",))),
            _account_create,
            _account_update,
        ),
        EntitySpec(
            "contacts",
            CONTACTS,
            ContactCreate,
            (
                NaturalKey(("external_ref",)),
                NaturalKey(("email",)),
                NaturalKey(("mobile",)),
                NaturalKey(("name", "account_id"), complete=False),
            ),
            _contact_create,
            _contact_update,
        ),
        EntitySpec(
            "leads",
            LEADS,
            LeadCreate,
            (
                NaturalKey(("external_ref",)),
                NaturalKey(("email",)),
                NaturalKey(("mobile",)),
                NaturalKey(("name", "company"), complete=False),
            ),
            _lead_create,
        ),
        EntitySpec(
            "opportunities",
            OPPORTUNITIES,
            OpportunityCreate,
            (NaturalKey(("external_ref",)), NaturalKey(("name", "account_id"), complete=False)),
            _opportunity_create,
            _opportunity_update,
        ),
        EntitySpec("products", PRODUCTS, ProductCreate, (NaturalKey(("code",)), NaturalKey(("name",)))),
        EntitySpec("product_lines", PRODUCT_LINES, ProductLineCreate, (NaturalKey(("name",)),)),
        EntitySpec(
            "activities",
            ACTIVITIES,
            ActivityCreate,
            (NaturalKey(("occurred_at", "kind", "user_id", "subject"), complete=False),),
            _activity_create,
            _activity_update,
        ),
        EntitySpec(
            "tickets",
            TICKETS,
            TicketCreate,
            (NaturalKey(("subject", "account_id"), complete=False),),
            _ticket_create,
        ),
    )
}


def entity_spec(entity: str) -> EntitySpec:
    fields_of(entity)  # raises the "cannot be imported" error for unknown names
    return ENTITIES[entity]
