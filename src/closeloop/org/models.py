"""Organization, region, user and API-token tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.core.money import DEFAULT_CURRENCY
from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned
from closeloop.db.types import BigId, UTCDateTime
from closeloop.governance.fieldstamp import new_stamp


class OrganizationKind(StrEnum):
    SELLER = "seller"
    DEALER = "dealer"
    SERVICE_PROVIDER = "service_provider"
    LOGISTICS = "logistics"
    SUPPLIER = "supplier"


class Organization(IdentifiedBy, Timestamped, Versioned, Base):
    """A tenant. Partners (dealers, service providers, …) are organizations of their own, linked to
    the seller they work with through ``partner_of_id``; they never see each other's rows."""

    __tablename__ = "organizations"
    __noun__ = "organization"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    slug: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    kind: Mapped[OrganizationKind] = mapped_column(String(32), nullable=False, default=OrganizationKind.SELLER)
    partner_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("organizations.id"), nullable=True)
    default_currency: Mapped[str] = mapped_column(String(3), nullable=False, default=DEFAULT_CURRENCY)
    default_locale: Mapped[str] = mapped_column(String(10), nullable=False, default="zh_CN")
    #: replaced by every write to the organization's field masks or custom fields, so that every
    #: process reads its kept field configuration again (:mod:`closeloop.governance.fieldstamp`)
    fields_stamp: Mapped[str] = mapped_column(String(32), nullable=False, default=new_stamp, server_default="0")


class Region(IdentifiedBy, OrganizationScoped, Timestamped, Base):
    """A sales territory such as 华东 or Central."""

    __tablename__ = "regions"
    __noun__ = "region"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Department(IdentifiedBy, OrganizationScoped, Timestamped, Base):
    """A unit of the organization chart (销售中心 › 华东销售部 › 华东销售一组). Departments form a tree
    through ``parent_id``; users belong to one through ``users.department_id``. Targets, pools and
    approval flows are scoped to departments; the reporting line itself stays ``users.manager_id``."""

    __tablename__ = "departments"
    __noun__ = "department"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index("ix_departments_org_parent", "organization_id", "parent_id"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("departments.id", ondelete="SET NULL"), nullable=True
    )
    region_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("regions.id", ondelete="SET NULL"), nullable=True)


class User(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """A person who signs in. ``manager_id`` builds the reporting tree that TEAM scope follows;
    ``department_id`` places them in the organization chart."""

    __tablename__ = "users"
    __noun__ = "user"
    __table_args__ = (
        Index("ix_users_org_id", "organization_id", "id"),
        Index("ix_users_org_manager", "organization_id", "manager_id"),
    )

    username: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    display_name: Mapped[str] = mapped_column(String(120), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    manager_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    region_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("regions.id", ondelete="SET NULL"), nullable=True)
    department_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("departments.id", ondelete="SET NULL"), nullable=True
    )
    locale: Mapped[str | None] = mapped_column(String(10), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: bumped by a password, role or activation change; browser sessions signed in under an older one end
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")


class ApiToken(IdentifiedBy, OrganizationScoped, Timestamped, Base):
    """A personal bearer token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"
    __noun__ = "api_token"
    __table_args__ = (Index("ix_api_tokens_org_user", "organization_id", "user_id"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
