"""Import runs as feeds for freshness monitoring (``quality/freshness.py``): each finished,
non-trial import job is one change of its feed (entity and source file name)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.db.scope import tenant_clause
from closeloop.integrations.importing.models import ImportJob, ImportStatus
from closeloop.quality.freshness import Change, import_feed


def import_runs(session: Session, organization_id: int, since: datetime) -> Iterator[Change]:
    """``(feed, finished_at)`` of every import that wrote records after ``since``."""
    statement = select(ImportJob.entity, ImportJob.file_name, ImportJob.finished_at).where(
        tenant_clause(organization_id, ImportJob),
        ImportJob.status == ImportStatus.DONE,
        ImportJob.dry_run.is_(False),
        ImportJob.finished_at >= since,
    )
    for entity, file_name, finished_at in session.execute(statement):
        if finished_at is not None:
            yield import_feed(entity, file_name), finished_at


#: the feed sources beyond the audit trail, for callers above the import package
SOURCES = (import_runs,)
