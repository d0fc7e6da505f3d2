"""In-app notifications: what the product tells one person (an alert crossed, a feed gone stale,
a sign-off waiting). Raised by services and the worker; read by the web workspace's bell and the
API. A notification belongs to its recipient alone — nobody else reads it, not even a manager.

Texts are stored in both interface languages at the time they are raised, so the worker needs no
catalogue and what a person was told stays as it was told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Select, String, Text, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import NotFound
from closeloop.core.pagination import Cursor
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.db.types import BigId, UTCDateTime


class Notification(IdentifiedBy, OrganizationScoped, Base):
    """One message to one user. ``source_key`` names what raised it (``threshold:12``,
    ``freshness:account.intent``) so a condition that persists is not announced twice while the
    first notice is still unread."""

    __tablename__ = "notifications"
    __noun__ = "notification"
    __table_args__ = (
        Index("ix_notifications_recipient", "organization_id", "user_id", "read_at", "id"),
        Index("ix_notifications_source", "organization_id", "user_id", "source_key"),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    title_zh: Mapped[str] = mapped_column(String(300), nullable=False)
    title_en: Mapped[str] = mapped_column(String(300), nullable=False)
    body_zh: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    link: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class Message:
    """What to say, in both languages."""

    kind: str
    title_zh: str
    title_en: str
    body_zh: str | None = None
    body_en: str | None = None
    link: str | None = None


def notify(
    session: Session, *, organization_id: int, user_id: int, message: Message, source_key: str | None = None
) -> Notification | None:
    """Tell ``user_id``. With ``source_key``, nothing is added while an unread notice from the same
    source is waiting (the condition is already announced); returns the new notification or None."""
    if source_key is not None:
        waiting = session.scalar(
            select(Notification.id).where(
                tenant_clause(organization_id, Notification),
                Notification.user_id == user_id,
                Notification.source_key == source_key,
                Notification.read_at.is_(None),
            )
        )
        if waiting is not None:
            return None
    notification = Notification(
        organization_id=organization_id,
        user_id=user_id,
        kind=message.kind,
        title_zh=message.title_zh[:300],
        title_en=message.title_en[:300],
        body_zh=message.body_zh,
        body_en=message.body_en,
        link=message.link,
        source_key=source_key,
    )
    session.add(notification)
    session.flush()
    return notification


def notice_row(*, organization_id: int, user_id: int, message: Message) -> dict[str, Any]:
    """The row :func:`notify` would add (no ``source_key``), for :func:`notify_many`."""
    return {
        "organization_id": organization_id,
        "user_id": user_id,
        "kind": message.kind,
        "title_zh": message.title_zh[:300],
        "title_en": message.title_en[:300],
        "body_zh": message.body_zh,
        "body_en": message.body_en,
        "link": message.link,
        "source_key": None,
        "created_at": utcnow(),
    }


def notify_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add many notices (rows of :func:`notice_row`) in one statement, in the session's transaction."""
    if rows:
        session.execute(insert(Notification), rows)


def _mine(actor: Actor) -> Select[Notification]:
    return visible(actor, Notification, access=RowAccess.READ).where(Notification.user_id == (actor.user_id or 0))


def unread_count(session: Session, actor: Actor) -> int:
    if actor.user_id is None:
        return 0
    query = _mine(actor).where(Notification.read_at.is_(None)).with_only_columns(func.count())
    return int(session.scalar(query) or 0)


def serialize(notification: Notification, locale: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": notification.id,
        "kind": notification.kind,
        "title": {"zh_CN": notification.title_zh, "en": notification.title_en},
        "body": {"zh_CN": notification.body_zh, "en": notification.body_en},
        "link": notification.link,
        "created_at": notification.created_at.isoformat(),
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }
    if locale is not None:
        english = locale == "en"
        body["text"] = notification.title_en if english else notification.title_zh
        body["detail"] = notification.body_en if english else notification.body_zh
    return body


def page(
    session: Session, actor: Actor, *, unread_only: bool = False, limit: int = 50, cursor: str | None = None
) -> tuple[list[Notification], str | None]:
    """The actor's notifications, newest first, ``limit`` at a time (keyset cursor on id)."""
    query = _mine(actor)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if cursor:
        query = query.where(Notification.id < Cursor.decode(cursor, sort="-id").id)
    rows = list(session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)))
    following = Cursor("-id", None, rows[limit - 1].id).encode() if len(rows) > limit else None
    return rows[:limit], following


def mark_read(session: Session, actor: Actor, notification_id: int) -> Notification:
    notification = session.scalar(_mine(actor).where(Notification.id == notification_id))
    if notification is None:
        raise NotFound("notification", notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        session.flush()
    return notification


def mark_all_read(session: Session, actor: Actor) -> int:
    ids = list(session.scalars(_mine(actor).where(Notification.read_at.is_(None)).with_only_columns(Notification.id)))
    if ids:
        session.execute(update(Notification).where(Notification.id.in_(ids)).values(read_at=utcnow()))
    return len(ids)
