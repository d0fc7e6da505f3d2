"""Import jobs: a file uploaded for import, run in the background, with its progress and report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, Versioned, tenant_indexes
from closeloop.db.types import BigId, JSONDocument, UTCDateTime


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(IdentifiedBy, OrganizationScoped, Timestamped, Base):
    """One import of one file into one entity, started by ``user_id`` (``None``: the system).

    The file is kept under ``<var_dir>/imports/<organization id>/`` as ``stored_path``;
    ``processed_rows`` of ``total_rows`` grows while the job runs; ``report`` holds the outcome
    (see ``ImportReport.as_dict``) and ``error`` why a failed job could not run at all.
    """

    __tablename__ = "import_jobs"
    __noun__ = "import_job"
    __table_args__ = tenant_indexes("import_jobs", "user_id")

    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    stored_path: Mapped[str] = mapped_column(String(500), nullable=False)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    #: the saved mapping the job used, if any (a change request's impact counts these)
    mapping_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("import_mappings.id", ondelete="SET NULL"), nullable=True
    )
    encoding: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sheet: Mapped[str | None] = mapped_column(String(100), nullable=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[ImportStatus] = mapped_column(String(16), nullable=False, default=ImportStatus.QUEUED)
    total_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    processed_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ImportMapping(IdentifiedBy, OrganizationScoped, Timestamped, Versioned, Base):
    """A saved column mapping for importing one entity (``columns``: file column → field), named
    so that a recurring feed is imported the same way every time. Created, changed and deleted
    only through signed-off change requests (GOV-5): a silently changed mapping is how a field
    stops being filled without anyone noticing."""

    __tablename__ = "import_mappings"
    __noun__ = "import_mapping"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(80), nullable=False)
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    columns: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
