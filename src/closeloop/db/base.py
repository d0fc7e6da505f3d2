"""The declarative base and the mixins that declare a model's capabilities."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import Date, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from closeloop.core.clock import utcnow
from closeloop.db.types import BigId, JSONDocument, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every table of Closeloop."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigId,
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Money,
        str: String(255),
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
    }


class IdentifiedBy:
    """A 64-bit integer primary key."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class OrganizationScoped:
    """A row that belongs to one organization (tenant). Read it only through ``db.scope``."""

    #: tables with this mixin get PostgreSQL row-level security in the migrations
    is_tenant_table: ClassVar[bool] = True

    @declared_attr
    def organization_id(cls) -> Mapped[int]:
        return mapped_column(BigId, ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


class Versioned:
    """Optimistic concurrency: every UPDATE checks and bumps ``version`` (ETag / If-Match)."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class SoftDeleted:
    """Deleted rows stay (restorable, and referenced by history) but are invisible to every query."""

    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CustomFields:
    """Values of fields that sales ops define themselves (GOV-1), keyed by field name."""

    custom: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)


class Owned:
    """A record with an owner; row scopes OWN and TEAM are decided on this column."""

    @declared_attr
    def owner_id(cls) -> Mapped[int | None]:
        return mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class RecordModel(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, SoftDeleted, Base):
    """A business record: tenant-scoped, timestamped, versioned and soft-deleted."""

    __abstract__ = True


def tenant_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """Indexes led by ``organization_id``: the id order for pagination, plus one per column given."""
    indexes = [Index(f"ix_{table}_org_id", "organization_id", "id")]
    indexes.extend(Index(f"ix_{table}_org_{column}", "organization_id", column, "id") for column in columns)
    return tuple(indexes)


__all__ = [
    "Base",
    "CustomFields",
    "Date",
    "ForeignKey",
    "IdentifiedBy",
    "Money",
    "OrganizationScoped",
    "Owned",
    "RecordModel",
    "SoftDeleted",
    "String",
    "Text",
    "Timestamped",
    "Versioned",
    "tenant_indexes",
]
