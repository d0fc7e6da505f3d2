"""Activity request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from closeloop.crm.enums import ActivityKind, Direction
from closeloop.crm.schemas import CustomValues, Id, Schema, ShortText, Text, Timestamp


class ActivityFields(Schema):
    direction: Direction | None = None
    subject: ShortText | None = None
    occurred_at: Timestamp | None = None
    user_id: Id | None = Field(default=None, description="Who had the interaction (default: you)")
    account_id: Id | None = None
    contact_id: Id | None = None
    opportunity_id: Id | None = None
    lead_id: Id | None = None
    is_replied: bool | None = Field(default=None, description="For outbound messages: did the customer answer?")
    replied_at: Timestamp | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    outcome: ShortText | None = None
    content_ref: (
        Annotated[str, Field(max_length=500, description="Where the content is: a URL, file or message id")] | None
    ) = None
    notes: Text | None = None
    custom: CustomValues | None = None


class ActivityCreate(ActivityFields):
    kind: ActivityKind


class ActivityUpdate(ActivityFields):
    kind: ActivityKind | None = None
