"""Lead services: the inbox, assignment and the one-step conversion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, NotFound, ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.crm.contacts import service as contact_service
from closeloop.crm.contacts.models import Contact
from closeloop.crm.contacts.schemas import ContactCreate
from closeloop.crm.enums import LeadSource, LeadStatus
from closeloop.crm.leads.models import Lead
from closeloop.crm.leads.schemas import LeadConvert, LeadCreate, LeadUpdate
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require

LEADS: RecordType[Lead] = records.register(
    RecordType(
        noun="lead",
        plural="leads",
        model=Lead,
        read_fields=(
            "id",
            "name",
            "company",
            "title",
            "email",
            "phone",
            "mobile",
            "source",
            "status",
            "industry",
            "region_id",
            "product_line_id",
            "owner_id",
            "received_at",
            "disqualified_reason",
            "converted_at",
            "converted_account_id",
            "converted_contact_id",
            "converted_opportunity_id",
            "notes",
            "external_ref",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "name": FieldSpec(Kind.STR, sortable=True),
            "company": FieldSpec(Kind.STR, sortable=True),
            "email": FieldSpec(Kind.STR),
            "mobile": FieldSpec(Kind.STR),
            "source": FieldSpec(Kind.STR, tuple(LeadSource)),
            "status": FieldSpec(Kind.STR, tuple(LeadStatus), sortable=True),
            "industry": FieldSpec(Kind.STR),
            "region_id": FieldSpec(Kind.INT),
            "product_line_id": FieldSpec(Kind.INT),
            "owner_id": FieldSpec(Kind.INT),
            "received_at": FieldSpec(Kind.DATETIME, sortable=True),
            "converted_at": FieldSpec(Kind.DATETIME, sortable=True),
            "external_ref": FieldSpec(Kind.STR),
        },
        references={"region_id": "region", "product_line_id": "product_line", "owner_id": "user"},
        search_fields=("name", "company", "email", "mobile"),
    )
)


def get_lead(session: Session, actor: Actor, *, lead_id: int) -> Lead:
    return records.get(session, actor, LEADS, lead_id, access=RowAccess.READ)


#: checks run before a lead is created (the duplicate protection of ``closeloop.pools`` registers
#: itself here); each may refuse with a DomainError
CREATE_GUARDS: list[Callable[[Session, Actor, dict[str, Any]], None]] = []


def create_lead(session: Session, actor: Actor, *, data: LeadCreate) -> Lead:
    """Create a lead; without an owner it waits in the inbox, visible to every rep."""
    values = data.model_dump(exclude_unset=True)
    records.require_write(actor, LEADS)
    for guard in CREATE_GUARDS:
        guard(session, actor, values)
    values.setdefault("received_at", utcnow())
    if values.get("owner_id") is not None:
        values.setdefault("status", LeadStatus.WORKING)
    return records.create(session, actor, LEADS, values)


def update_lead(
    session: Session,
    actor: Actor,
    *,
    lead_id: int,
    data: LeadUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Lead:
    """Change a lead. Conversion has its own call; disqualifying needs a reason."""
    lead = get_lead(session, actor, lead_id=lead_id)
    records.require_write(actor, LEADS)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, LeadUpdate) else dict(data)
    status = changes.get("status")
    if status == LeadStatus.CONVERTED and lead.status != LeadStatus.CONVERTED:
        raise ValidationFailed.one("status", "use the convert call to convert a lead", "use_convert")
    if lead.status == LeadStatus.CONVERTED and status not in (None, LeadStatus.CONVERTED):
        raise Conflict("A converted lead cannot change status", field_name="status")
    if status == LeadStatus.DISQUALIFIED and not (changes.get("disqualified_reason") or lead.disqualified_reason):
        raise ValidationFailed.one("disqualified_reason", "is required to disqualify a lead", "required")
    previous_owner = lead.owner_id
    if changes.get("owner_id", previous_owner) != previous_owner and changes.get("status", lead.status) == lead.status:
        changes.update(_status_for_owner(lead, changes["owner_id"]))
    updated = records.update(session, actor, LEADS, lead, changes, expected_version=expected_version)
    if updated.owner_id != previous_owner:
        # an edit that hands the lead to someone is an assignment too: rules and lead briefs keyed
        # on ``lead.assigned`` fire whichever path assigned it
        audit.record(
            session,
            actor,
            "lead.assigned",
            subject_type=LEADS.noun,
            subject_id=updated.id,
            changes=audit.diff({"owner_id": previous_owner}, {"owner_id": updated.owner_id}),
        )
    return updated


def _status_for_owner(lead: Lead, owner_id: int | None) -> dict[str, Any]:
    """The status change that goes with giving a lead an owner (or taking it away)."""
    if owner_id is not None and lead.status == LeadStatus.NEW:
        return {"status": LeadStatus.WORKING}
    if owner_id is None and lead.status == LeadStatus.WORKING:
        return {"status": LeadStatus.NEW}
    return {}


def assign_lead(
    session: Session, actor: Actor, *, lead_id: int, owner_id: int | None, expected_version: int | None = None
) -> Lead:
    """Give a lead to a rep (or back to the inbox with ``None``)."""
    lead = get_lead(session, actor, lead_id=lead_id)
    records.require_write(actor, LEADS)
    if lead.status == LeadStatus.CONVERTED:
        raise Conflict("A converted lead cannot be reassigned", field_name="owner_id")
    changes: dict[str, Any] = {"owner_id": owner_id, **_status_for_owner(lead, owner_id)}
    return records.update(
        session, actor, LEADS, lead, changes, expected_version=expected_version, action="lead.assigned"
    )


def delete_lead(session: Session, actor: Actor, *, lead_id: int, expected_version: int | None = None) -> None:
    records.delete(session, actor, LEADS, get_lead(session, actor, lead_id=lead_id), expected_version=expected_version)


@dataclass(frozen=True, slots=True)
class Conversion:
    lead: Lead
    account: Account
    contact: Contact | None
    opportunity: Opportunity | None


#: functions naming the existing account a converting lead belongs to (the duplicate protection of
#: ``closeloop.pools`` registers itself here); the first answer wins
MERGE_TARGETS: list[Callable[[Session, Actor, Lead], int | None]] = []


def convert_lead(
    session: Session, actor: Actor, *, lead_id: int, data: LeadConvert, expected_version: int | None = None
) -> Conversion:
    """Turn a lead into an account (new or existing), a contact and an opportunity, all or nothing.

    The new records default to what the lead says (company, person, industry, region) and are owned
    by the lead's owner, or by the converting user when the lead was unassigned.
    """
    require(actor, "leads:write")
    # Lock the lead before creating anything: a concurrent edit of the same lead then waits for
    # the conversion instead of deadlocking against the account and opportunity it inserts.
    lead = records.get(session, actor, LEADS, lead_id, access=RowAccess.WRITE, lock=True)
    if lead.status == LeadStatus.CONVERTED:
        raise Conflict(f"Lead {lead.id} was already converted", code="already_converted")
    if lead.status == LeadStatus.DISQUALIFIED:
        raise Conflict(f"Lead {lead.id} is disqualified; requalify it before converting", code="disqualified")
    owner_id = lead.owner_id or actor.user_id
    if data.account_id is None and data.account is None:
        for find in MERGE_TARGETS:
            target = find(session, actor, lead)
            if target is not None:  # the company is an account already: the lead merges into it
                data = data.model_copy(update={"account_id": target})
                break
    if data.account_id is not None:
        try:
            account = records.get(session, actor, account_service.ACCOUNTS, data.account_id, access=RowAccess.WRITE)
        except NotFound:  # a reference in the body, not the lead in the path: name the field
            raise ValidationFailed.one(
                "account_id", f"no account {data.account_id} that you can see", "not_found"
            ) from None
    else:
        account_data = data.account or AccountCreate.model_validate(
            {
                "name": lead.company or lead.name,
                "industry": lead.industry,
                "region_id": lead.region_id,
                "owner_id": owner_id,
            }
        )
        if data.account is not None and "owner_id" not in data.account.model_fields_set:
            account_data = account_data.model_copy(update={"owner_id": owner_id})
        account = account_service.create_account(session, actor, data=account_data)
    contact = None
    if data.create_contact:
        contact_data = data.contact or ContactCreate.model_validate(
            {
                "name": lead.name,
                "title": lead.title,
                "email": lead.email,
                "phone": lead.phone,
                "mobile": lead.mobile,
                "owner_id": owner_id,
            }
        )
        contact_data = contact_data.model_copy(update={"account_id": account.id})
        contact = contact_service.create_contact(session, actor, data=contact_data)
    opportunity = None
    if data.create_opportunity:
        opportunity_data = data.opportunity or OpportunityCreate.model_validate(
            {
                "name": f"{account.name} - {lead.name}" if lead.company else account.name,
                "owner_id": owner_id,
                "product_line_ids": [lead.product_line_id] if lead.product_line_id else None,
            }
        )
        opportunity_data = opportunity_data.model_copy(
            update={
                "account_id": account.id,
                "contact_id": contact.id if contact else opportunity_data.contact_id,
            }
        )
        opportunity = opportunity_service.create_opportunity(
            session, actor, data=opportunity_data, source_lead_id=lead.id
        )
    records.update(
        session,
        actor,
        LEADS,
        lead,
        {
            "status": LeadStatus.CONVERTED,
            "converted_at": utcnow(),
            "converted_account_id": account.id,
            "converted_contact_id": contact.id if contact else None,
            "converted_opportunity_id": opportunity.id if opportunity else None,
            "owner_id": lead.owner_id or actor.user_id,
        },
        expected_version=expected_version,
        action="lead.converted",
    )
    session.flush()
    return Conversion(lead=lead, account=account, contact=contact, opportunity=opportunity)
