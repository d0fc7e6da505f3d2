"""Referral services: which customer brought which lead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict
from closeloop.crm import records
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.crm.referrals.models import Referral
from closeloop.crm.referrals.schemas import ReferralCreate, ReferralUpdate
from closeloop.db.scope import RowAccess, tenant_clause

REFERRALS: RecordType[Referral] = records.register(
    RecordType(
        noun="referral",
        plural="referrals",
        model=Referral,
        read_fields=(
            "id",
            "referrer_account_id",
            "referrer_contact_id",
            "lead_id",
            "referred_at",
            "notes",
            "owner_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "referrer_account_id": FieldSpec(Kind.INT),
            "referrer_contact_id": FieldSpec(Kind.INT),
            "lead_id": FieldSpec(Kind.INT),
            "owner_id": FieldSpec(Kind.INT),
            "referred_at": FieldSpec(Kind.DATETIME, sortable=True),
        },
        references={
            "referrer_account_id": "account",
            "referrer_contact_id": "contact",
            "lead_id": "lead",
            "owner_id": "user",
        },
        search_fields=("notes",),
    )
)


def get_referral(session: Session, actor: Actor, *, referral_id: int) -> Referral:
    return records.get(session, actor, REFERRALS, referral_id, access=RowAccess.READ)


def record_referral(session: Session, actor: Actor, *, data: ReferralCreate) -> Referral:
    """Record that an account referred a lead; a lead has at most one referrer."""
    records.require_write(actor, REFERRALS)
    values = data.model_dump(exclude_unset=True)
    values.setdefault("referred_at", utcnow())
    # the lead and account must be ones the actor can see before we say anything about their referrals
    records.check_references(session, actor, REFERRALS, values)
    _check_one_referrer(session, actor, data.lead_id)
    return records.create(session, actor, REFERRALS, values)


def _check_one_referrer(session: Session, actor: Actor, lead_id: int, own_id: int | None = None) -> None:
    statement = select(Referral.id).where(
        tenant_clause(actor.organization_id, Referral), Referral.lead_id == lead_id, Referral.deleted_at.is_(None)
    )
    if own_id is not None:
        statement = statement.where(Referral.id != own_id)
    if session.scalar(statement) is not None:
        raise Conflict(f"Lead {lead_id} already has a referrer", code="duplicate", field_name="lead_id")


def update_referral(
    session: Session,
    actor: Actor,
    *,
    referral_id: int,
    data: ReferralUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Referral:
    referral = get_referral(session, actor, referral_id=referral_id)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ReferralUpdate) else dict(data)
    lead_id = changes.get("lead_id")
    if isinstance(lead_id, int) and lead_id != referral.lead_id:
        records.check_references(session, actor, REFERRALS, {"lead_id": lead_id})
        _check_one_referrer(session, actor, lead_id, referral.id)
    return records.update(session, actor, REFERRALS, referral, changes, expected_version=expected_version)


def delete_referral(session: Session, actor: Actor, *, referral_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session,
        actor,
        REFERRALS,
        get_referral(session, actor, referral_id=referral_id),
        expected_version=expected_version,
    )
