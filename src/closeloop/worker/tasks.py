"""Background tasks and schedules."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from sqlalchemy import delete, select

from closeloop.config import settings
from closeloop.core.clock import utcnow
from closeloop.crm.alerts import service as alerts
from closeloop.crm.alerts.service import CheckResult
from closeloop.db.idempotency import IdempotencyKey
from closeloop.governance.audit import service as audit
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


# Huey's decorators are untyped; registering by call keeps the functions themselves typed.
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
