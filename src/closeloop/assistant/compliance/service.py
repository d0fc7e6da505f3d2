"""Checking drafts, scanning logged activities, and the supervisors' review queue.

The checker acts as the caller: a product's lead time is read only when the caller may see the
product and its ``lead_time_days``; findings and reviews are listed through the row scope of the
activity's owner; a finding's text is shown only to readers who may read the field it was found in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from closeloop.assistant.compliance.matcher import Finding, default_checker
from closeloop.assistant.compliance.models import ComplianceFinding, ComplianceReview, ComplianceScan
from closeloop.assistant.compliance.packs import Lang
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind, Direction
from closeloop.crm.products.models import Product
from closeloop.db.scope import RowAccess, tenant_clause, visible, within_organization
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.fields import can_read_field
from closeloop.governance.permissions import require
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.notifications import Message, notify

#: the activity fields a scan reads
SCANNED_FIELDS = ("subject", "notes")
#: logged messages that left the company: their level-3 findings go to review
OUTGOING_KINDS = frozenset({ActivityKind.EMAIL.value, ActivityKind.CHAT.value})
REVIEW_STATUSES = ("pending", "approved", "rejected")
MAX_TEXT = 20_000
SCAN_CHUNK = 500


def text_too_long_or_empty(text: str) -> tuple[str, str] | None:
    """Why ``text`` cannot be checked (message, code), or None. A draft is never cut: one longer than
    :data:`MAX_TEXT` is refused whole, naming the limit and its length, so a clean answer always
    covers every character the rep pasted."""
    if not text.strip():
        return "must not be empty: paste the draft to check", "required"
    if len(text) > MAX_TEXT:
        return (
            f"at most {MAX_TEXT} characters; this text has {len(text)}: check it in parts of at most {MAX_TEXT}",
            "too_long",
        )
    return None


def check_text(
    session: Session, actor: Actor, text: str, *, lang: Lang | None = None, product_id: int | None = None
) -> list[Finding]:
    """The findings in ``text``; with ``product_id``, delivery promises are held against its lead time."""
    require(actor, "compliance:check")
    if text_problem := text_too_long_or_empty(text):
        raise ValidationFailed.one("text", text_problem[0], code=text_problem[1])
    lead_time: int | None = None
    if product_id is not None:
        product = session.scalar(visible(actor, Product, access=RowAccess.READ).where(Product.id == product_id))
        if product is None:
            raise NotFound("product", product_id)
        if can_read_field(session, actor, "product", "lead_time_days"):
            lead_time = product.lead_time_days
    return default_checker().check(text, lang=lang, lead_time_days=lead_time)


def finding_body(finding: Finding) -> dict[str, Any]:
    return finding.as_dict()


def _manager_of(session: Session, organization_id: int, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    return session.scalar(select(User.manager_id).where(tenant_clause(organization_id, User), User.id == user_id))


def _open_review(
    session: Session,
    actor: Actor,
    *,
    organization_id: int,
    rep_id: int | None,
    findings: list[dict[str, Any]],
    activity_id: int | None = None,
    draft: str | None = None,
) -> ComplianceReview:
    reviewer_id = _manager_of(session, organization_id, rep_id)
    review = ComplianceReview(
        organization_id=organization_id,
        rep_id=rep_id,
        reviewer_id=reviewer_id,
        activity_id=activity_id,
        draft=draft,
        findings=findings,
        status="pending",
        created_at=utcnow(),
    )
    session.add(review)
    session.flush()
    audit.record(
        session,
        actor,
        "compliance.review_opened",
        subject_type="compliance_review",
        subject_id=review.id,
        changes={"status": [None, "pending"], "activity_id": [None, activity_id]},
        organization_id=organization_id,
    )
    if reviewer_id is not None:
        notify(
            session,
            organization_id=organization_id,
            user_id=reviewer_id,
            message=Message(
                kind="compliance_review",
                title_zh="有一条外发消息含高风险用语，待您审核",
                title_en="An outgoing message with a level-3 compliance finding awaits your review",
                link=f"/compliance/reviews#review-{review.id}",
            ),
        )
    return review


def submit_outgoing(session: Session, actor: Actor, text: str, findings: list[Finding]) -> ComplianceReview | None:
    """A draft about to be sent: with a level-3 finding it goes to the author's manager for review."""
    require(actor, "compliance:check")
    serious = [finding.as_dict() for finding in findings if finding.level >= 3]
    if not serious:
        return None
    return _open_review(
        session,
        actor,
        organization_id=actor.organization_id,
        rep_id=actor.user_id,
        findings=serious,
        draft=text,
    )


# --- batch scans over logged activities ------------------------------------------------------


def request_scan(session: Session, actor: Actor, *, since: datetime | None = None) -> ComplianceScan:
    """Queue a scan of the organization's activities (the caller enqueues it once this commits)."""
    require(actor, "compliance:scan")
    scan = ComplianceScan(
        organization_id=actor.organization_id,
        status="queued",
        since=since,
        requested_by_id=actor.user_id,
        requested_at=utcnow(),
    )
    session.add(scan)
    session.flush()
    audit.record(
        session,
        actor,
        "compliance.scan_requested",
        subject_type="compliance_scan",
        subject_id=scan.id,
        changes={"since": [None, since.isoformat() if since else None]},
    )
    return scan


def get_scan(session: Session, actor: Actor, scan_id: int) -> ComplianceScan:
    require(actor, "compliance:read")
    scan = session.scalar(
        select(ComplianceScan).where(tenant_clause(actor.organization_id, ComplianceScan), ComplianceScan.id == scan_id)
    )
    if scan is None:
        raise NotFound("compliance scan", scan_id)
    return scan


def scan_body(scan: ComplianceScan) -> dict[str, Any]:
    return {
        "id": scan.id,
        "status": scan.status,
        "since": scan.since,
        "requested_at": scan.requested_at,
        "started_at": scan.started_at,
        "finished_at": scan.finished_at,
        "activities_checked": scan.activities_checked,
        "findings_stored": scan.findings_stored,
        "reviews_opened": scan.reviews_opened,
        "error": scan.error,
    }


def run_scan(database: Database, organization_id: int, scan_id: int) -> ComplianceScan:
    """Run a queued scan in one unit of work: every activity's findings are replaced by this scan's;
    outgoing messages with a level-3 finding and no review yet get one. A failure rolls back and
    marks the scan failed."""
    actor = org_service.system_actor(organization_id, label="compliance scan")
    try:
        with database.unit_of_work(actor) as session:
            scan = session.scalar(
                select(ComplianceScan).where(
                    tenant_clause(organization_id, ComplianceScan), ComplianceScan.id == scan_id
                )
            )
            if scan is None:
                raise NotFound("compliance scan", scan_id)
            scan.status, scan.started_at = "running", utcnow()
            _scan_activities(session, actor, scan)
            scan.status, scan.finished_at = "done", utcnow()
            session.flush()
            session.expunge(scan)
            return scan
    except NotFound:
        raise
    except Exception as error:
        with database.unit_of_work(actor) as session:
            failed = session.scalar(
                select(ComplianceScan).where(
                    tenant_clause(organization_id, ComplianceScan), ComplianceScan.id == scan_id
                )
            )
            if failed is not None:
                failed.status, failed.finished_at, failed.error = "failed", utcnow(), str(error)[:2000]
        raise


def scan_recent(database: Database, organization_id: int, *, since: datetime) -> ComplianceScan:
    """Request and run a scan of the activities since ``since`` (the nightly pass), as the system."""
    actor = org_service.system_actor(organization_id, label="compliance scan")
    with database.unit_of_work(actor) as session:
        scan_id = request_scan(session, actor, since=since).id
    return run_scan(database, organization_id, scan_id)


def _scan_activities(session: Session, actor: Actor, scan: ComplianceScan) -> None:
    checker = default_checker()
    organization_id = scan.organization_id
    query = within_organization(organization_id, Activity).order_by(Activity.id)
    if scan.since is not None:
        query = query.where(Activity.occurred_at >= scan.since)
    reviewed = set(
        session.scalars(
            select(ComplianceReview.activity_id).where(
                tenant_clause(organization_id, ComplianceReview), ComplianceReview.activity_id.is_not(None)
            )
        )
    )
    batch: list[Activity] = []

    def flush_batch() -> None:
        ids = [activity.id for activity in batch]
        session.execute(
            delete(ComplianceFinding).where(
                tenant_clause(organization_id, ComplianceFinding), ComplianceFinding.activity_id.in_(ids)
            )
        )
        # every scanned field of the batch in one pass of the checker's batch API
        texts = [getattr(activity, field_name) or "" for activity in batch for field_name in SCANNED_FIELDS]
        found = iter(checker.check_many(texts))
        for activity in batch:
            serious: list[dict[str, Any]] = []
            for field_name in SCANNED_FIELDS:
                for finding in next(found):
                    session.add(
                        ComplianceFinding(
                            organization_id=organization_id,
                            activity_id=activity.id,
                            scan_id=scan.id,
                            user_id=activity.user_id,
                            field=field_name,
                            start=finding.start,
                            end=finding.end,
                            span=finding.span,
                            level=finding.level,
                            category=finding.category,
                            citation=finding.citation,
                            rule=finding.rule,
                            found_at=utcnow(),
                        )
                    )
                    scan.findings_stored += 1
                    if finding.level >= 3:
                        serious.append({**finding.as_dict(), "field": field_name})
            outgoing = activity.kind in OUTGOING_KINDS and activity.direction == Direction.OUTBOUND.value
            if serious and outgoing and activity.id not in reviewed:
                _open_review(
                    session,
                    actor,
                    organization_id=organization_id,
                    rep_id=activity.user_id,
                    findings=serious,
                    activity_id=activity.id,
                )
                reviewed.add(activity.id)
                scan.reviews_opened += 1
        scan.activities_checked += len(batch)
        session.flush()
        batch.clear()

    # ids first, then the rows in chunks: no cursor stays open while findings are written
    ids = list(session.scalars(query.with_only_columns(Activity.id)))
    for chunk_start in range(0, len(ids), SCAN_CHUNK):
        chunk = ids[chunk_start : chunk_start + SCAN_CHUNK]
        batch.extend(session.scalars(query.where(Activity.id.in_(chunk))))
        flush_batch()


# --- reading findings and reviews --------------------------------------------------------------


def _shown(session: Session, actor: Actor, finding: dict[str, Any], field_name: str | None) -> dict[str, Any]:
    """A finding as ``actor`` may see it: the phrase is left out when the source field is masked."""
    if field_name is not None and not can_read_field(session, actor, "activity", field_name):
        return {key: value for key, value in finding.items() if key not in ("span", "explanation")} | {"span": None}
    return finding


def list_findings(
    session: Session, actor: Actor, *, activity_id: int | None = None, min_level: int = 1, limit: int = 100
) -> list[dict[str, Any]]:
    """Stored findings of the activities the actor may see, newest first."""
    require(actor, "compliance:read")
    query = visible(actor, ComplianceFinding, access=RowAccess.READ).where(ComplianceFinding.level >= min_level)
    if activity_id is not None:
        query = query.where(ComplianceFinding.activity_id == activity_id)
    rows = session.scalars(query.order_by(ComplianceFinding.id.desc()).limit(limit))
    return [
        _shown(
            session,
            actor,
            {
                "id": row.id,
                "activity_id": row.activity_id,
                "scan_id": row.scan_id,
                "user_id": row.user_id,
                "field": row.field,
                "start": row.start,
                "end": row.end,
                "span": row.span,
                "level": row.level,
                "category": row.category,
                "citation": row.citation,
                "rule": row.rule,
                "found_at": row.found_at,
            },
            row.field,
        )
        for row in rows
    ]


def review_body(session: Session, actor: Actor, review: ComplianceReview) -> dict[str, Any]:
    return {
        "id": review.id,
        "status": review.status,
        "rep_id": review.rep_id,
        "reviewer_id": review.reviewer_id,
        "activity_id": review.activity_id,
        "draft": review.draft,
        "findings": [_shown(session, actor, dict(item), item.get("field")) for item in review.findings],
        "created_at": review.created_at,
        "decided_at": review.decided_at,
        "decided_by_id": review.decided_by_id,
        "reason": review.reason,
    }


def list_reviews(
    session: Session, actor: Actor, *, status: str | None = "pending", limit: int = 100
) -> list[ComplianceReview]:
    """Reviews of messages by the reps the actor may see (their own, their team's), newest first."""
    require(actor, "compliance:read")
    query = visible(actor, ComplianceReview, access=RowAccess.READ)
    if status is not None:
        if status not in REVIEW_STATUSES:
            raise ValidationFailed.one("status", f"one of {', '.join(REVIEW_STATUSES)}")
        query = query.where(ComplianceReview.status == status)
    return list(session.scalars(query.order_by(ComplianceReview.id.desc()).limit(limit)))


def decide_review(
    session: Session,
    actor: Actor,
    review_id: int,
    *,
    approve: bool,
    reason: str | None = None,
    comment: str | None = None,
) -> ComplianceReview:
    """Approve or reject a pending review (a supervisor's decision; never the author's own). A
    rejection needs a ``reason``; letting a message with a level-3 finding go out needs a ``comment``
    saying why (kept as the review's reason, which the rep sees)."""
    require(actor, "compliance:review")
    review = session.scalar(
        visible(actor, ComplianceReview, access=RowAccess.WRITE).where(ComplianceReview.id == review_id)
    )
    if review is None:
        raise NotFound("compliance review", review_id)
    if review.rep_id is not None and review.rep_id == actor.user_id:
        raise Forbidden("You cannot decide a review of your own message")
    if review.status != "pending":
        raise Conflict(f"The review is already {review.status}", field_name="status")
    if not approve and not (reason or "").strip():
        raise ValidationFailed.one("reason", "a rejection needs a reason")
    said = (comment or "").strip() or (reason or "").strip()
    if approve and not said and any(int(f.get("level") or 0) >= 3 for f in review.findings or []):
        raise ValidationFailed.one(
            "comment", "approving a message with a level-3 finding needs a comment saying why it may go out",
            "required",
        )  # fmt: skip
    status = "approved" if approve else "rejected"
    review.status, review.decided_at, review.decided_by_id = status, utcnow(), actor.user_id
    review.reason = said or None
    audit.record(
        session,
        actor,
        f"compliance.review_{status}",
        subject_type="compliance_review",
        subject_id=review.id,
        changes={"status": ["pending", status], "reason": [None, review.reason]},
    )
    if review.rep_id is not None:
        notify(
            session,
            organization_id=review.organization_id,
            user_id=review.rep_id,
            message=Message(
                kind="compliance_review",
                title_zh="您的消息审核已通过" if approve else "您的消息审核未通过",
                title_en="Your message was approved" if approve else "Your message was rejected",
                body_zh=review.reason,
                body_en=review.reason,
                link=f"/compliance/reviews#review-{review.id}",
            ),
        )
    session.flush()
    return review
