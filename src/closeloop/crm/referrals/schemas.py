"""Referral request bodies."""

from __future__ import annotations

from datetime import datetime

from closeloop.crm.schemas import Id, Schema, Text


class ReferralCreate(Schema):
    referrer_account_id: Id
    lead_id: Id
    referrer_contact_id: Id | None = None
    referred_at: datetime | None = None
    notes: Text | None = None
    owner_id: Id | None = None


class ReferralUpdate(Schema):
    referrer_contact_id: Id | None = None
    referred_at: datetime | None = None
    notes: Text | None = None
    owner_id: Id | None = None
