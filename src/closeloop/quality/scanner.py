"""Running the rules over an organization and keeping defects and their tasks current.

A scan opens a defect (and a task for whoever must fix it) for each new finding, resolves the
defects whose records no longer break their rule (closing their tasks, as the system), follows a
record's change of owner to its defect and task, and reopens a task someone marked done while its
defect is still there. An incremental scan re-checks only the records changed since the last
scan's watermark (less an overlap for late commits) for ``CHANGED`` rules, those plus the records
whose due boundary the clock crossed since the last scan for ``DUE`` (time-dependent) rules, and
the touched name blocks for duplicates; rules that depend on other records run whole every time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.crm.tasks import service as task_service
from closeloop.crm.tasks.models import Task, TaskStatus
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import Organization, User
from closeloop.quality import kpis
from closeloop.quality.models import Defect, Scan, ScanStatus
from closeloop.quality.rules import CHUNK, MODELS, RULES, Context, Finding, Recheck, Rule, chunks

log = logging.getLogger("closeloop.quality")

#: days a defect's task is due in, by severity
DUE_DAYS = {"high": 3, "medium": 7, "low": 14}
#: who takes the tasks of records without an (active) owner and without an active manager, in order
FALLBACK_ROLES = (Role.ADMIN, Role.SALES_VP, Role.DIRECTOR, Role.MANAGER)


@dataclass
class RuleOutcome:
    open: int = 0
    checked: int | None = None
    opened: int = 0
    resolved: int = 0

    def as_dict(self) -> dict[str, int | None]:
        return {"open": self.open, "checked": self.checked, "opened": self.opened, "resolved": self.resolved}


@dataclass
class ScanResult:
    scan_id: int
    full: bool
    since: datetime | None
    seconds: float
    rules: dict[str, RuleOutcome] = field(default_factory=dict)
    #: records of each kind that changed since the watermark (incremental scans)
    changed: dict[str, int] = field(default_factory=dict)

    @property
    def opened(self) -> int:
        return sum(outcome.opened for outcome in self.rules.values())

    @property
    def resolved(self) -> int:
        return sum(outcome.resolved for outcome in self.rules.values())


class Assignees:
    """Who gets a defect's task: the record's owner; if the owner is inactive, their nearest active
    manager; for records without an owner (or nobody active up the line), the organization's first
    active admin, else sales VP, director or manager."""

    def __init__(self, session: Session, organization_id: int) -> None:
        rows = session.execute(
            select(User.id, User.is_active, User.manager_id, User.role).where(tenant_clause(organization_id, User))
        ).all()
        self.active = {row.id for row in rows if row.is_active}
        self.manager = {row.id: row.manager_id for row in rows}
        self.fallback: int | None = None
        for role in FALLBACK_ROLES:
            candidates = sorted(row.id for row in rows if row.is_active and row.role == role.value)
            if candidates:
                self.fallback = candidates[0]
                break

    def __call__(self, owner_id: int | None) -> int | None:
        seen: set[int] = set()
        current = owner_id
        while current is not None and current not in seen:
            if current in self.active:
                return current
            seen.add(current)
            current = self.manager.get(current)
        return self.fallback


def _locale(session: Session, organization_id: int) -> str:
    return session.scalar(select(Organization.default_locale).where(Organization.id == organization_id)) or "zh_CN"


def _changed_since(session: Session, organization_id: int, since: datetime) -> dict[str, list[int]]:
    """Ids of the records of each kind changed (or deleted) after ``since``."""
    changed: dict[str, list[int]] = {}
    for noun, model in MODELS.items():
        changed[noun] = list(
            session.scalars(
                select(model.id).where(
                    tenant_clause(organization_id, model, include_deleted=True), model.updated_at > since
                )
            )
        )
    return changed


def _watermark(session: Session, organization_id: int) -> datetime | None:
    newest = [
        session.scalar(
            select(func.max(model.updated_at)).where(tenant_clause(organization_id, model, include_deleted=True))
        )
        for model in MODELS.values()
    ]
    values = [value for value in newest if value is not None]
    return max(values) if values else None


def _open_defects(
    session: Session, organization_id: int, rule: Rule, checked: Mapping[str, set[int]] | None
) -> dict[tuple[str, int], Any]:
    columns = (Defect.id, Defect.subject_type, Defect.subject_id, Defect.owner_id, Defect.details, Defect.task_id)
    base = select(*columns).where(
        tenant_clause(organization_id, Defect), Defect.rule == rule.id, Defect.resolved_at.is_(None)
    )
    rows: list[Any] = []
    if checked is None:
        rows = list(session.execute(base))
    else:
        for subject_type, ids in checked.items():
            for chunk in chunks(sorted(ids)):
                rows.extend(
                    session.execute(base.where(Defect.subject_type == subject_type, Defect.subject_id.in_(chunk)))
                )
    return {(row.subject_type, row.subject_id): row for row in rows}


class Scanner:
    """One scan of one organization, in the caller's unit of work (which commits it)."""

    def __init__(self, session: Session, organization_id: int, *, now: datetime | None = None) -> None:
        self.session = session
        self.organization_id = organization_id
        self.now = now or utcnow()
        self.actor: Actor = org_service.system_actor(organization_id, label="data-quality scan")
        self.locale = _locale(session, organization_id)
        self.assignees = Assignees(session, organization_id)
        self.context = Context(
            session,
            organization_id,
            self.now,
            title_days=settings.quality_title_days,
            stage_days=settings.quality_stage_days,
            lead_hours=settings.quality_lead_hours,
        )

    def run(self, *, full: bool = False, scan: Scan | None = None, rules: Sequence[Rule] = RULES) -> ScanResult:
        started = time.perf_counter()
        session = self.session
        previous = session.scalar(
            select(Scan)
            .where(tenant_clause(self.organization_id, Scan), Scan.status == ScanStatus.DONE)
            .order_by(Scan.id.desc())
            .limit(1)
        )
        since = None
        if not full and previous is not None and previous.watermark is not None:
            since = previous.watermark - timedelta(seconds=settings.quality_overlap_seconds)
        full = since is None
        if scan is None:
            scan = Scan(organization_id=self.organization_id, full=full, requested_at=self.now)
            session.add(scan)
        scan.full, scan.status, scan.started_at, scan.since = full, ScanStatus.RUNNING, self.now, since
        session.flush()
        # the window of the time-dependent (DUE) rules: what the last scan's clock saw, and since when
        self.context.previous = previous.started_at if since is not None and previous is not None else None
        self.context.since = since
        watermark = _watermark(session, self.organization_id)
        changed = None if since is None else _changed_since(session, self.organization_id, since)
        result = ScanResult(scan.id, full, since, 0.0, changed={k: len(v) for k, v in (changed or {}).items()})
        for rule in rules:
            result.rules[rule.id] = self._apply(rule, None if rule.recheck is Recheck.ALWAYS else changed)
        self._reopen_tasks_marked_done()
        kpis.take_snapshots(session, self.organization_id, scan_id=scan.id, now=self.now)
        result.seconds = time.perf_counter() - started
        scan.status = ScanStatus.DONE
        scan.finished_at = utcnow()
        scan.watermark = max(filter(None, (watermark, previous.watermark if previous else None)), default=None)
        scan.checked = sum(outcome.checked or 0 for outcome in result.rules.values())
        scan.opened, scan.resolved = result.opened, result.resolved
        scan.report = {rule_id: outcome.as_dict() for rule_id, outcome in result.rules.items()}
        audit.record(
            session,
            self.actor,
            "quality.scanned",
            subject_type="quality_scan",
            subject_id=scan.id,
            changes={
                "full": [None, full],
                "opened": [None, result.opened],
                "resolved": [None, result.resolved],
            },
        )
        session.flush()
        return result

    # --- one rule -----------------------------------------------------------------------------

    def _apply(self, rule: Rule, changed: Mapping[str, Sequence[int]] | None) -> RuleOutcome:
        session = self.session
        check = rule.find(self.context, changed)
        found = {(f.subject_type, f.subject_id): f for f in check.findings}
        existing = _open_defects(session, self.organization_id, rule, check.checked)
        outcome = RuleOutcome(checked=None if check.checked is None else sum(map(len, check.checked.values())))
        new = [finding for key, finding in found.items() if key not in existing]
        gone = [row for key, row in existing.items() if key not in found]
        kept = [(row, found[key]) for key, row in existing.items() if key in found]
        outcome.opened = self._open(rule, new)
        outcome.resolved = self._resolve(gone)
        self._refresh(kept)
        outcome.open = int(
            session.scalar(
                select(func.count())
                .select_from(Defect)
                .where(
                    tenant_clause(self.organization_id, Defect), Defect.rule == rule.id, Defect.resolved_at.is_(None)
                )
            )
            or 0
        )
        return outcome

    def _open(self, rule: Rule, findings: list[Finding]) -> int:
        if not findings:
            return 0
        due = self.now.date() + timedelta(days=DUE_DAYS[rule.severity.value])
        label = rule.label(self.locale)
        tasks = [
            task_service.NewTask(
                title=f"{label}: {finding.label}" if finding.label else label,
                owner_id=self.assignees(finding.owner_id),
                subject_type=finding.subject_type,
                subject_id=finding.subject_id,
                link=rule.link(finding.subject_type, finding.subject_id),
                source=f"quality:{rule.id}",
                description=rule.advice(self.locale),
                due_on=due,
            )
            for finding in findings
        ]
        task_ids = task_service.open_system_tasks(self.session, self.actor, tasks)
        rows = [
            {
                "organization_id": self.organization_id,
                "rule": rule.id,
                "severity": rule.severity.value,
                "subject_type": finding.subject_type,
                "subject_id": finding.subject_id,
                "owner_id": finding.owner_id,
                "details": finding.details,
                "first_seen": self.now,
                "last_seen": self.now,
                "task_id": task_id,
            }
            for finding, task_id in zip(findings, task_ids, strict=True)
        ]
        for start in range(0, len(rows), CHUNK):
            self.session.execute(insert(Defect), rows[start : start + CHUNK])
        return len(rows)

    def _resolve(self, rows: list[Any]) -> int:
        if not rows:
            return 0
        ids = [row.id for row in rows]
        for chunk in chunks(ids):
            self.session.execute(
                update(Defect)
                .where(tenant_clause(self.organization_id, Defect), Defect.id.in_(chunk))
                .values(resolved_at=self.now, last_seen=self.now)
                .execution_options(synchronize_session=False)
            )
        task_service.close_system_tasks(self.session, self.actor, [row.task_id for row in rows if row.task_id])
        return len(rows)

    def _refresh(self, kept: list[tuple[Any, Finding]]) -> None:
        """Bring still-open defects up to date: seen now, the record's current owner and details."""
        changes: list[dict[str, Any]] = []
        moves: dict[int, tuple[int | None, int | None]] = {}
        for row, finding in kept:
            if row.owner_id != finding.owner_id or row.details != finding.details:
                changes.append({"id": row.id, "owner_id": finding.owner_id, "details": finding.details})
                if row.owner_id != finding.owner_id and row.task_id is not None:
                    moves[row.task_id] = (self.assignees(row.owner_id), self.assignees(finding.owner_id))
        for chunk in chunks([row.id for row, _ in kept]):
            self.session.execute(
                update(Defect)
                .where(tenant_clause(self.organization_id, Defect), Defect.id.in_(chunk))
                .values(last_seen=self.now)
                .execution_options(synchronize_session=False)
            )
        for start in range(0, len(changes), CHUNK):
            self.session.execute(update(Defect), changes[start : start + CHUNK])
        task_service.reassign_system_tasks(
            self.session, self.actor, {task: move for task, move in moves.items() if move[0] != move[1]}
        )

    def _reopen_tasks_marked_done(self) -> None:
        """A person marked a defect's task done, but the defect is still there: the task opens again."""
        statement = (
            select(Task.id)
            .join(Defect, Defect.task_id == Task.id)
            .where(
                tenant_clause(self.organization_id, Defect),
                tenant_clause(self.organization_id, Task),
                Defect.resolved_at.is_(None),
                Task.status == TaskStatus.DONE.value,
            )
        )
        task_service.reopen_system_tasks(self.session, self.actor, list(self.session.scalars(statement)))


def scan_organization(
    session: Session,
    organization_id: int,
    *,
    full: bool = False,
    scan: Scan | None = None,
    now: datetime | None = None,
    rules: Sequence[Rule] = RULES,
) -> ScanResult:
    """Scan one organization (incrementally unless ``full`` or it was never scanned) in ``session``'s
    unit of work, which the caller commits."""
    result = Scanner(session, organization_id, now=now).run(full=full, scan=scan, rules=rules)
    log.info(
        "quality scan %s of organization %s: %s opened, %s resolved in %.1f s",
        result.scan_id,
        organization_id,
        result.opened,
        result.resolved,
        result.seconds,
    )
    return result


def open_counts(session: Session, organization_id: int) -> Counter[str]:
    """Open defects of each rule."""
    rows = session.execute(
        select(Defect.rule, func.count())
        .where(tenant_clause(organization_id, Defect), Defect.resolved_at.is_(None))
        .group_by(Defect.rule)
    )
    return Counter({rule: int(count) for rule, count in rows})
