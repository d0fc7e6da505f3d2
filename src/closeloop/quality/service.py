"""What people ask of the data-quality loop: the defects they may see, scans on demand, KPIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.core.pagination import Cursor, Page
from closeloop.crm import records
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org import service as org_service
from closeloop.quality.models import Defect, Scan, ScanStatus
from closeloop.quality.rules import RULES_BY_ID, Rule, Severity
from closeloop.quality.scanner import ScanResult, scan_organization

STATUSES = ("open", "resolved", "all")


@dataclass(frozen=True, slots=True)
class DefectFilters:
    rule: str | None = None
    severity: str | None = None
    owner_id: int | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    status: str = "open"


def defect_body(session: Session, actor: Actor, defect: Defect, locale: str | None = None) -> dict[str, Any]:
    """A defect as ``actor`` may see it: field values of masked fields are left out of its details."""
    rule: Rule | None = RULES_BY_ID.get(defect.rule)
    details = dict(defect.details)
    hidden = records.masked(session, actor, defect.subject_type)
    if hidden and isinstance(details.get("fields"), dict):
        details["fields"] = {name: value for name, value in details["fields"].items() if name not in hidden}
    if hidden and isinstance(details.get("problems"), dict):
        details["problems"] = {name: value for name, value in details["problems"].items() if name not in hidden}
    return {
        "id": defect.id,
        "rule": defect.rule,
        "severity": defect.severity,
        "label": rule.label(locale or actor.locale) if rule else defect.rule,
        "subject_type": defect.subject_type,
        "subject_id": defect.subject_id,
        "owner_id": defect.owner_id,
        "details": details,
        "link": Rule.link(defect.subject_type, defect.subject_id),
        "first_seen": defect.first_seen,
        "last_seen": defect.last_seen,
        "resolved_at": defect.resolved_at,
        "task_id": defect.task_id,
    }


def list_defects(
    session: Session, actor: Actor, *, filters: DefectFilters, limit: int = 50, cursor: str | None = None
) -> Page[dict[str, Any]]:
    """Defects of records within the actor's row scope, newest first, one page at a time."""
    require(actor, "quality:read")
    if filters.rule is not None and filters.rule not in RULES_BY_ID:
        raise ValidationFailed.one("rule", f"'{filters.rule}' is not a rule (known: {', '.join(sorted(RULES_BY_ID))})")
    if filters.severity is not None and filters.severity not in tuple(Severity):
        raise ValidationFailed.one("severity", f"use one of: {', '.join(Severity)}")
    if filters.status not in STATUSES:
        raise ValidationFailed.one("status", f"use one of: {', '.join(STATUSES)}")
    statement = select(Defect).where(visibility_clause(actor, Defect, access=RowAccess.READ))
    if filters.status == "open":
        statement = statement.where(Defect.resolved_at.is_(None))
    elif filters.status == "resolved":
        statement = statement.where(Defect.resolved_at.is_not(None))
    for column, value in (
        (Defect.rule, filters.rule),
        (Defect.severity, filters.severity),
        (Defect.owner_id, filters.owner_id),
        (Defect.subject_type, filters.subject_type),
        (Defect.subject_id, filters.subject_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if cursor:
        statement = statement.where(Defect.id < Cursor.decode(cursor, sort="-id").id)
    defects = list(session.scalars(statement.order_by(Defect.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(defects) > limit:
        defects = defects[:limit]
        next_cursor = Cursor("-id", defects[-1].id, defects[-1].id).encode()
    return Page(items=[defect_body(session, actor, defect) for defect in defects], next_cursor=next_cursor)


def scan_body(scan: Scan) -> dict[str, Any]:
    return {
        "id": scan.id,
        "full": scan.full,
        "status": scan.status,
        "requested_at": scan.requested_at,
        "started_at": scan.started_at,
        "finished_at": scan.finished_at,
        "since": scan.since,
        "watermark": scan.watermark,
        "checked": scan.checked,
        "opened": scan.opened,
        "resolved": scan.resolved,
        "report": scan.report,
        "error": scan.error,
    }


def request_scan(session: Session, actor: Actor, *, full: bool = False) -> Scan:
    """Queue a scan of the actor's organization (the caller enqueues it once this commits)."""
    require(actor, "quality:scan")
    scan = Scan(
        organization_id=actor.organization_id,
        full=full,
        status=ScanStatus.QUEUED,
        requested_by_id=actor.user_id,
        requested_at=utcnow(),
    )
    session.add(scan)
    session.flush()
    audit.record(
        session,
        actor,
        "quality.scan_requested",
        subject_type="quality_scan",
        subject_id=scan.id,
        changes={"full": [None, full]},
    )
    return scan


def get_scan(session: Session, actor: Actor, *, scan_id: int) -> Scan:
    require(actor, "quality:read")
    scan = session.scalar(select(Scan).where(tenant_clause(actor.organization_id, Scan), Scan.id == scan_id))
    if scan is None:
        raise NotFound("quality scan", scan_id)
    return scan


def run_scan(database: Database, organization_id: int, *, scan_id: int | None = None, full: bool = False) -> ScanResult:
    """Run a scan of one organization in a unit of work of its own (a queued one when ``scan_id`` is
    given). A failing scan is marked failed with the reason, and its partial work is rolled back."""
    actor = org_service.system_actor(organization_id, label="data-quality scan")
    try:
        with database.unit_of_work(actor) as session:
            scan = None
            if scan_id is not None:
                scan = session.scalar(select(Scan).where(tenant_clause(organization_id, Scan), Scan.id == scan_id))
                if scan is None:
                    raise NotFound("quality scan", scan_id)
                full = scan.full
            return scan_organization(session, organization_id, full=full, scan=scan)
    except NotFound:
        raise
    except Exception as error:
        if scan_id is not None:
            _mark_failed(database, organization_id, scan_id, error)
        raise


def _mark_failed(database: Database, organization_id: int, scan_id: int, error: Exception) -> None:
    with database.unit_of_work(org_service.system_actor(organization_id)) as session:
        scan = session.scalar(select(Scan).where(tenant_clause(organization_id, Scan), Scan.id == scan_id))
        if scan is not None:
            scan.status = ScanStatus.FAILED
            scan.finished_at = utcnow()
            scan.error = f"{type(error).__name__}: {error}"[:500]


def defect_counts(session: Session, actor: Actor) -> dict[str, int]:
    """Open defects of each rule among the records within the actor's row scope."""
    require(actor, "quality:read")
    rows = session.execute(
        select(Defect.rule, func.count())
        .where(visibility_clause(actor, Defect, access=RowAccess.READ), Defect.resolved_at.is_(None))
        .group_by(Defect.rule)
    )
    return {rule: int(count) for rule, count in rows}


def latest_scan(session: Session, actor: Actor) -> Scan | None:
    """The organization's newest scan (queued, running or done)."""
    require(actor, "quality:read")
    return session.scalar(
        select(Scan).where(tenant_clause(actor.organization_id, Scan)).order_by(Scan.id.desc()).limit(1)
    )
