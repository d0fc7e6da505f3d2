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
from closeloop.db.scope import tenant_clause

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
    return records.get(session, actor, REFERRALS, referral_id)


def record_referral(session: Session, actor: Actor, *, data: ReferralCreate) -> Referral:
    """Record that an account referred a lead; a lead has at most one referrer."""
    records.require_write(actor, REFERRALS)
    values = data.model_dump(exclude_unset=True)
    values.setdefault("referred_at", utcnow())
    taken = session.scalar(
        select(Referral.id).where(tenant_clause(actor.organization_id, Referral), Referral.lead_id == data.lead_id)
    )
    if taken is not None:
        raise Conflict(f"Lead {data.lead_id} already has a referrer", code="duplicate", field_name="lead_id")
    return records.create(session, actor, REFERRALS, values)


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
    return records.update(session, actor, REFERRALS, referral, changes, expected_version=expected_version)


def delete_referral(session: Session, actor: Actor, *, referral_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session,
        actor,
        REFERRALS,
        get_referral(session, actor, referral_id=referral_id),
        expected_version=expected_version,
    )
