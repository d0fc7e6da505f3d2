"""Stored responses of POST requests that carried an ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.types import BigId, UTCDateTime


class IdempotencyKey(IdentifiedBy, OrganizationScoped, Base):
    """A key a client sent with a create, the request it named, and the response it got.

    A retry with the same key and the same request gets the same response without a second
    create; the same key with another request is refused.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("organization_id", "principal", "key"),)

    principal: Mapped[str] = mapped_column(String(40), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[str] = mapped_column(Text, nullable=False)
    location: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    record_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
