"""Referral request bodies."""

from __future__ import annotations

from closeloop.crm.schemas import Id, Schema, Text, Timestamp


class ReferralCreate(Schema):
    referrer_account_id: Id
    lead_id: Id
    referrer_contact_id: Id | None = None
    referred_at: Timestamp | None = None
    notes: Text | None = None
    owner_id: Id | None = None


class ReferralUpdate(Schema):
    referrer_contact_id: Id | None = None
    referred_at: Timestamp | None = None
    notes: Text | None = None
    owner_id: Id | None = None
