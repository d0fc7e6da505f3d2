"""Import jobs: a file uploaded for import, run in the background, with its progress and report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closeloop.db.base import Base, IdentifiedBy, OrganizationScoped, Timestamped, tenant_indexes
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
