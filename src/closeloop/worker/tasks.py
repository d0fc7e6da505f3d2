"""Background tasks and schedules."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from huey import crontab
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core.clock import utcnow
from closeloop.crm.alerts import service as alerts
from closeloop.crm.alerts.service import CheckResult
from closeloop.db.idempotency import IdempotencyKey
from closeloop.governance.audit import service as audit
from closeloop.governance.events.service import Claimed
from closeloop.org import service as org_service
from closeloop.org.models import Organization
from closeloop.worker.queue import huey, worker_database

log = logging.getLogger("closeloop.worker")


def purge_idempotency_keys() -> int:
    """Forget stored responses of idempotent requests older than the retention window (hourly)."""
    cutoff = utcnow() - timedelta(hours=settings.idempotency_hours)
    with worker_database().unit_of_work(None, system=True) as session:
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
        removed = int(getattr(result, "rowcount", 0) or 0)
    log.info("purged %d idempotency keys", removed)
    return removed


def verify_audit_chains() -> dict[int, int]:
    """Walk every organization's audit chain (nightly) and record any break in the trail itself."""
    found: dict[int, int] = {}
    database = worker_database()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    for organization_id in organization_ids:
        with database.reading(None, system=True) as session:
            problems = list(audit.verify(session, organization_id))
        found[organization_id] = len(problems)
        if problems:
            log.error("audit chain of organization %s has %d problems", organization_id, len(problems))
            with database.unit_of_work(None, system=True) as session:
                audit.record(
                    session,
                    org_service.system_actor(organization_id, label="audit verifier"),
                    "audit.verification_failed",
                    subject_type="organization",
                    subject_id=organization_id,
                    changes={"problems": [None, [f"{p.kind}@{p.seq}: {p.detail}" for p in problems[:50]]]},
                )
    return found


#: where the worker notes that it runs (in the queue's own storage, which every worker shares)
HEARTBEAT_KEY = "closeloop.worker.heartbeat"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The last sign of life of a worker: when, on which host, which process."""

    at: datetime
    host: str
    pid: int


def record_heartbeat() -> None:
    """Note that a worker runs (as each worker thread starts, then every minute as a periodic task,
    so a stale heartbeat means no consumer is taking tasks): ``closeloop worker health`` reads it."""
    huey.put(HEARTBEAT_KEY, {"at": utcnow().isoformat(), "host": socket.gethostname(), "pid": os.getpid()})


def last_heartbeat() -> Heartbeat | None:
    """The newest heartbeat of any worker on this queue, or ``None`` when none has run yet."""
    raw = huey.get(HEARTBEAT_KEY, peek=True)
    if not isinstance(raw, dict):
        return None
    try:
        return Heartbeat(datetime.fromisoformat(str(raw["at"])), str(raw["host"]), int(raw["pid"]))
    except (KeyError, TypeError, ValueError):
        return None


# Huey's decorators are untyped; registering by call keeps the functions themselves typed.
#: ahead of every other task (a backlog of imports or scans must not make a busy worker look dead);
#: a beat still waits for a free thread, so ``--max-age`` should exceed the longest task
record_heartbeat_task = huey.periodic_task(crontab(), name="record_heartbeat", priority=100)(record_heartbeat)
huey.on_startup("record_heartbeat")(record_heartbeat)
purge_idempotency_keys_task = huey.periodic_task(crontab(minute="17"))(purge_idempotency_keys)
verify_audit_chains_task = huey.periodic_task(crontab(minute="40", hour="2"))(verify_audit_chains)


def run_import_job(job_id: int) -> None:
    """Run one queued import job (``POST /api/v1/imports`` enqueues it once the job is committed)."""
    from closeloop.integrations.importing.jobs import process_import_job

    status = process_import_job(worker_database(), job_id)
    log.info("import job %s: %s", job_id, status)


run_import_job_task = huey.task(retries=0)(run_import_job)


def enqueue_import_job(job_id: int) -> None:
    """Queue :func:`run_import_job` for ``job_id``."""
    run_import_job_task(job_id)


def run_quality_scan(organization_id: int, scan_id: int) -> None:
    """Run one queued data-quality scan (``POST /api/v1/quality/scans`` enqueues it once committed)."""
    from closeloop.quality.service import run_scan

    result = run_scan(worker_database(), organization_id, scan_id=scan_id)
    log.info("quality scan %s: %d opened, %d resolved", scan_id, result.opened, result.resolved)


run_quality_scan_task = huey.task(retries=0)(run_quality_scan)


def enqueue_quality_scan(organization_id: int, scan_id: int) -> None:
    """Queue :func:`run_quality_scan`."""
    run_quality_scan_task(organization_id, scan_id)


def run_compliance_scan(organization_id: int, scan_id: int) -> None:
    """Run one queued compliance scan (``POST /api/v1/compliance/scans`` enqueues it once committed)."""
    from closeloop.assistant.compliance.service import run_scan

    scan = run_scan(worker_database(), organization_id, scan_id)
    log.info("compliance scan %s: %d activities, %d findings", scan_id, scan.activities_checked, scan.findings_stored)


run_compliance_scan_task = huey.task(retries=0)(run_compliance_scan)


def enqueue_compliance_scan(organization_id: int, scan_id: int) -> None:
    """Queue :func:`run_compliance_scan`."""
    run_compliance_scan_task(organization_id, scan_id)


def scan_compliance_nightly() -> dict[int, int]:
    """The nightly compliance pass: the last two days of activities of every organization, each in
    its own transaction. Returns the findings stored per organization."""
    from closeloop.assistant.compliance.service import scan_recent

    database = worker_database()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    since = utcnow() - timedelta(days=2)
    stored: dict[int, int] = {}
    for organization_id in organization_ids:
        try:
            stored[organization_id] = scan_recent(database, organization_id, since=since).findings_stored
        except Exception:
            log.exception("compliance scan of organization %s failed", organization_id)
    return stored


#: every night at 03:25 (server time), after the data-quality pass
scan_compliance_nightly_task = huey.periodic_task(crontab(minute="25", hour="3"))(scan_compliance_nightly)


def scan_quality_nightly() -> dict[int, int]:
    """The nightly data-quality pass: an incremental scan of every organization (a full one the first
    time), each in its own transaction so that one organization's failure does not stop the rest.
    Returns the defects opened per organization."""
    from closeloop.quality.service import run_scan

    database = worker_database()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    opened: dict[int, int] = {}
    for organization_id in organization_ids:
        try:
            opened[organization_id] = run_scan(database, organization_id).opened
        except Exception:
            log.exception("quality scan of organization %s failed", organization_id)
    return opened


#: every night at 03:10 (server time), after the audit verification at 02:40
scan_quality_nightly_task = huey.periodic_task(crontab(minute="10", hour="3"))(scan_quality_nightly)


def check_alert_thresholds() -> CheckResult:
    """Evaluate every alert threshold set on a dashboard chart, each as its owner, and notify the
    owners of breaches (hourly; a breach still unread is not announced again)."""
    result = alerts.check_all(worker_database())
    log.info("alert thresholds: %d checked, %d breached", result.checked, result.breached)
    return result


#: every hour at minute 5
check_alert_thresholds_task = huey.periodic_task(crontab(minute="5"))(check_alert_thresholds)


def check_freshness_nightly() -> dict[int, int]:
    """The nightly freshness pass (GOV-4): tell the owners of fields and feeds that went silent, per
    organization in its own transaction. Returns the alerts sent per organization."""
    from closeloop.integrations.importing.feeds import SOURCES
    from closeloop.quality import freshness

    database = worker_database()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    sent: dict[int, int] = {}
    for organization_id in organization_ids:
        try:
            with database.unit_of_work(org_service.system_actor(organization_id, label="freshness monitor")) as session:
                run = freshness.alert(session, organization_id, sources=SOURCES)
            sent[organization_id] = sum(map(len, run.alerted.values()))
        except Exception:
            log.exception("freshness check of organization %s failed", organization_id)
    return sent


#: every night at 03:40 (server time), after the data-quality scan
check_freshness_nightly_task = huey.periodic_task(crontab(minute="40", hour="3"))(check_freshness_nightly)


# --- automation: the outbox, scheduled rules and the undo window (AUTO-1, AUTO-4) ----------------


def drain_outbox() -> int:
    """Process every waiting outbox event through the rule engine (exactly once each)."""
    from closeloop.automation import engine

    processed = engine.drain(worker_database())
    if processed:
        log.info("outbox: %d events processed", processed)
    return processed


drain_outbox_task = huey.task(retries=2, retry_delay=1)(drain_outbox)
#: a safety net: events whose wake-up was lost (a worker killed mid-task) wait at most a minute
drain_outbox_periodic = huey.periodic_task(crontab(), name="drain_outbox_periodic")(drain_outbox)


def _wake_drain() -> None:
    drain_outbox_task()


def run_scheduled_rules() -> int:
    """Hourly: the scheduled rules ("no contact for 14 days", weekly reports) whose time it is."""
    from closeloop.automation import engine

    fired = engine.run_schedules(worker_database())
    log.info("scheduled rules: %d firings", fired)
    return fired


run_scheduled_rules_task = huey.periodic_task(crontab(minute="0"))(run_scheduled_rules)


def run_due_actions() -> int:
    """Run actions whose undo window has ended (also every minute, in case an ETA task was lost)."""
    from closeloop.automation import engine

    return engine.run_due_actions(worker_database())


run_due_actions_task = huey.task(retries=1, retry_delay=5)(run_due_actions)
run_due_actions_periodic = huey.periodic_task(crontab(), name="run_due_actions_periodic")(run_due_actions)


def deliver_webhooks() -> int:
    """Send outgoing webhooks that are due (first attempts and retries with backoff)."""
    from closeloop.automation import webhooks

    return webhooks.deliver_due(worker_database())


deliver_webhooks_task = huey.task(retries=0)(deliver_webhooks)
#: the safety net for retries whose ETA task was lost (a worker killed before it ran)
deliver_webhooks_periodic = huey.periodic_task(crontab(), name="deliver_webhooks_periodic")(deliver_webhooks)


def _schedule_delivery(due: datetime) -> None:
    deliver_webhooks_task.schedule(eta=due + timedelta(seconds=1))


def _schedule_pending(pending_id: int, run_after: datetime) -> None:
    run_due_actions_task.schedule(eta=run_after + timedelta(seconds=1))


def register_automation() -> None:
    """Queue a drain after every commit that emitted events, and each pending action at the end of
    its undo window (the web process and the worker call this; tests that drain by hand do not)."""
    from closeloop.automation import engine, webhooks
    from closeloop.governance.events import service as events

    events.on_commit(_wake_drain)
    engine.on_pending(_schedule_pending)
    engine.on_event(queue_assistant_workflows)
    webhooks.on_due(_schedule_delivery)


def _drain_at_startup() -> None:
    """A worker that starts (again) first processes what waited while none was running."""
    try:
        drain_outbox()
        run_due_actions()
        deliver_webhooks()
    except Exception:
        log.exception("draining the outbox at start-up failed")


huey.on_startup()(_drain_at_startup)


def index_knowledge_document(organization_id: int, document_id: int) -> str:
    """Parse, chunk and index one uploaded knowledge document (the upload enqueues it once committed)."""
    from closeloop.assistant.knowledge.service import index_document

    status = index_document(worker_database(), organization_id, document_id)
    log.info("knowledge document %s: %s", document_id, status)
    return status


index_knowledge_document_task = huey.task(retries=0)(index_knowledge_document)


def enqueue_knowledge_document(organization_id: int, document_id: int) -> None:
    """Queue :func:`index_knowledge_document`."""
    index_knowledge_document_task(organization_id, document_id)


def each_organization(
    what: str, work: Callable[[Session, int], int], *, organizations: Select[Any] | None = None
) -> dict[int, int]:
    """Run ``work(session, organization_id)`` for every organization (or those ``organizations``
    selects), each in its own transaction so that one organization's failure is logged and the
    others go on. Returns what ``work`` returned, per organization."""
    database = worker_database()
    with database.reading(None, system=True) as session:
        chosen = organizations if organizations is not None else select(Organization.id).order_by(Organization.id)
        organization_ids = sorted(set(session.scalars(chosen)))
    results: dict[int, int] = {}
    for organization_id in organization_ids:
        try:
            with database.unit_of_work(None, system=True) as session:
                results[organization_id] = work(session, organization_id)
        except Exception:
            log.exception("%s of organization %s failed", what, organization_id)
    return results


def recycle_pools_daily() -> dict[int, int]:
    """Every organization's pools: return the accounts their rules take back (one set-based run per
    pool) and remind owners of what would go soon — each organization in its own transaction.
    Returns the accounts recycled per organization."""
    from closeloop.pools.service import recycle

    return each_organization(
        "pool recycling", lambda session, organization_id: sum(run.total for run in recycle(session, organization_id))
    )


#: every day at 01:30 (server time), before the working day and the nightly scans
recycle_pools_daily_task = huey.periodic_task(crontab(minute="30", hour="1"))(recycle_pools_daily)


def run_collections_daily() -> dict[int, int]:
    """Every organization's collection plans (CN-3): mark overdue instalments, remind owners of due
    dates coming, alert owners and their managers of overdue ones — each organization in its own
    transaction, idempotent within a day. Returns the overdue alerts raised per organization."""
    from closeloop.cash.daily import run_daily

    return each_organization(
        "collection run", lambda session, organization_id: run_daily(session, organization_id).alerted
    )


#: every day at 07:50 (server time), so the alerts wait for people when they start work
run_collections_daily_task = huey.periodic_task(crontab(minute="50", hour="7"))(run_collections_daily)


def retrain_win_probability() -> dict[int, int]:
    """The weekly retraining of every seller organization's win-probability model (FC-1), each in its
    own transaction; an organization with too few closed deals keeps the stage win rates. Returns the
    closed deals each model was trained on."""
    from closeloop.core.errors import ValidationFailed
    from closeloop.forecasting.opportunities import retrain
    from closeloop.org.models import OrganizationKind

    database = worker_database()
    with database.reading(None, system=True) as session:
        organization_ids = list(
            session.scalars(
                select(Organization.id)
                .where(Organization.kind == OrganizationKind.SELLER.value)
                .order_by(Organization.id)
            )
        )
    trained: dict[int, int] = {}
    for organization_id in organization_ids:
        try:
            with database.unit_of_work(
                org_service.system_actor(organization_id, label="win-probability training")
            ) as session:
                trained[organization_id] = retrain(session, organization_id).closed_deals
        except ValidationFailed as error:
            log.info("win probability of organization %s not trained: %s", organization_id, error)
        except Exception:
            log.exception("win-probability training of organization %s failed", organization_id)
    return trained


#: every Sunday at 04:20 (server time), after the nightly passes
retrain_win_probability_task = huey.periodic_task(crontab(minute="20", hour="4", day_of_week="0"))(
    retrain_win_probability
)


def remind_work_reports() -> dict[int, int]:
    """Every organization with report rules: remind who has not submitted a report that is due
    (each person once per report, however often this runs). Returns the people reminded per organization."""
    from closeloop.reports.models import ReportRule
    from closeloop.reports.service import send_reminders

    def remind(session: Session, organization_id: int) -> int:
        return len(send_reminders(session, org_service.system_actor(organization_id, label="report reminder")))

    return each_organization("report reminders", remind, organizations=select(ReportRule.organization_id))


remind_work_reports_task = huey.periodic_task(crontab(minute="*/15"))(remind_work_reports)


def report_assistant_adoption_weekly() -> dict[int, int]:
    """Last week's adoption report of the assistants' suggestions (AST-5), kept per organization and
    shown on the report page. Returns the verdicts counted per organization."""
    from closeloop.assistant.feedback.service import store_report, week_of

    week = week_of(utcnow().date()) - timedelta(days=7)

    def report(session: Session, organization_id: int) -> int:
        overall = store_report(session, organization_id, week).body["overall"]
        return int(overall["adopted"] + overall["rejected"])

    return each_organization("the adoption report", report)


#: every Monday at 05:10 (server time): the week that just ended
report_assistant_adoption_weekly_task = huey.periodic_task(crontab(minute="10", hour="5", day_of_week="1"))(
    report_assistant_adoption_weekly
)


# --- assistant workflows (AST-6): woken by the outbox drain, run as their own tasks --------------


def run_assistant_workflow(
    organization_id: int, workflow_id: int, event_id: int, subject_type: str, subject_id: int
) -> str:
    """One configured assistant workflow for one event (composed as the record's owner)."""
    from closeloop.assistant.workflows import service as workflows

    return workflows.run(
        worker_database(),
        organization_id,
        workflow_id,
        event_id=event_id,
        subject_type=subject_type,
        subject_id=subject_id,
    )


run_assistant_workflow_task = huey.task(retries=1, retry_delay=10)(run_assistant_workflow)


def enqueue_assistant_workflow(
    organization_id: int, workflow_id: int, event_id: int, subject_type: str, subject_id: int
) -> None:
    run_assistant_workflow_task(organization_id, workflow_id, event_id, subject_type, subject_id)


def queue_assistant_workflows(session: Session, event: Claimed) -> None:
    """The drain's hook: queue each enabled workflow the event wakes, once the drain commits."""
    from closeloop.assistant.workflows.service import matching
    from closeloop.db.session import after_commit

    if event.subject_id is None:
        return
    for workflow_id in matching(session, event):
        after_commit(
            session,
            partial(
                enqueue_assistant_workflow,
                event.organization_id,
                workflow_id,
                event.id,
                event.subject_type,
                event.subject_id,
            ),
        )


def snapshot_bookings_forecasts() -> dict[int, int]:
    """The daily bookings-forecast snapshot of every seller organization (issue #5), each in its own
    transaction: the open pipeline simulated forward and stored, so that pages read it and it can
    later be compared with what was booked. Returns each snapshot's id."""
    from closeloop.forecasting.bookings import prune_snapshots, take_snapshot
    from closeloop.org.models import OrganizationKind

    def snapshot(session: Session, organization_id: int) -> int:
        taken = take_snapshot(session, organization_id).id
        prune_snapshots(session, organization_id)
        return taken

    sellers = select(Organization.id).where(Organization.kind == OrganizationKind.SELLER.value)
    return each_organization("bookings forecast snapshot", snapshot, organizations=sellers)


#: every day at 04:50 (server time), after the nightly passes and the Sunday retraining
snapshot_bookings_forecasts_task = huey.periodic_task(crontab(minute="50", hour="4"))(snapshot_bookings_forecasts)
