"""Verdicts on suggestions, what they do to rankings, and the weekly adoption report (AST-5).

Ranking: a knowledge passage's fused score moves by ``WEIGHT × Σ ±similarity`` over the verdicts
given on it, where the similarity is the overlap (Jaccard) of the words of the verdict's request and
of the new request, counted when at least :data:`MIN_SIMILARITY`; adopted counts +, rejected −, the
sum clipped to [−1, 1]. ``WEIGHT`` is the score of a first place in one ranking, so one rejection
on the same request takes a passage from first to below the second; a verdict on an unrelated
request does nothing. Verdicts of every rep of the organization count: the team learns together.

A partner organization's users judge the passages shared with them like any other; their verdicts
are stored under the partner organization and move only the partner's rankings — the seller's
verdicts never move (nor show through) a partner's ranking, nor a partner's the seller's.

The weekly report counts, per rep and per team (department), the verdicts given and the share
adopted, and groups the rejections by their reason (words normalized) and by source — what the
ethics review reads.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.assistant.feedback.models import AdoptionReport, SuggestionVerdict
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm import records
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org.models import Department, User

GIVE = "knowledge:read"
REPORT = "assistant:report"
SOURCES = ("brief", "talk_track", "battlecard", "passage")
VERDICTS = ("adopted", "rejected")
#: one first place in one ranking (reciprocal-rank fusion with k = 60)
WEIGHT = 1.0 / 61
MIN_SIMILARITY = 0.2
_KEY = re.compile(r"^[a-z_]{2,30}:\d{1,19}$")
#: the largest id a record can have (a signed 64-bit integer)
MAX_ID = 2**63 - 1


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of two requests' words."""
    left, right = set(query_tokens(a)), set(query_tokens(b))
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def record_verdict(
    session: Session, actor: Actor, *, source: str, key: str, query: str, verdict: str, reason: str = ""
) -> SuggestionVerdict:
    """Store one verdict; a rejection needs a reason (it is what the ethics review reads)."""
    require(actor, GIVE)
    if source not in SOURCES:
        raise ValidationFailed.one("source", f"source must be one of {', '.join(SOURCES)}")
    if verdict not in VERDICTS:
        raise ValidationFailed.one("verdict", "verdict must be adopted or rejected")
    if not _KEY.match(key):
        raise ValidationFailed.one("key", "key names a suggestion, like knowledge:12 or account:3")
    reason = reason.strip()
    if verdict == "rejected" and not reason:
        raise ValidationFailed.one("reason", "say why you reject it", "required")
    chunk_id = None
    if key.startswith("knowledge:"):
        from closeloop.assistant.knowledge.service import readable_chunk

        chunk_id = int(key.split(":", 1)[1])
        # a passage the caller may read: its organization's, or one its seller shared with it; the
        # verdict is the caller's organization's either way (a partner's never reaches the seller)
        if chunk_id > MAX_ID or not readable_chunk(session, actor, chunk_id):
            raise NotFound("knowledge passage", chunk_id)
    else:
        _check_readable_record(session, actor, key)
    row = SuggestionVerdict(
        organization_id=actor.organization_id,
        user_id=actor.user_id,
        source=source,
        key=key,
        chunk_id=chunk_id,
        query=query.strip()[:2000],
        verdict=verdict,
        reason=reason[:2000],
        decided_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        f"suggestion.{verdict}",
        subject_type="suggestion_verdict",
        subject_id=row.id,
        changes=audit.diff({}, {"source": source, "key": key, "reason": row.reason}),
    )
    return row


def _check_readable_record(session: Session, actor: Actor, key: str) -> None:
    """A verdict on a record's statement (``account:12``, the key a brief gives) only on a record
    the caller may read: "not found" otherwise, as for a passage — whether it exists elsewhere (a
    seller's account, for its partner's user) or not, and whether the role reads that kind or not.
    A key naming no kind of suggestion is a field problem."""
    noun, _, number = key.partition(":")
    try:
        record_type = records.record_type_for(noun)
    except KeyError:
        raise ValidationFailed.one("key", "key names a suggestion, like knowledge:12 or account:3") from None
    record_id = int(number)
    if record_id > MAX_ID or not actor.can(f"{record_type.plural}:read"):
        raise NotFound(record_type.noun, record_id)
    records.get(session, actor, record_type, record_id, access=RowAccess.READ)


def verdict_body(row: SuggestionVerdict) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "key": row.key,
        "query": row.query,
        "verdict": row.verdict,
        "reason": row.reason,
        "user_id": row.user_id,
        "decided_at": row.decided_at.isoformat(),
    }


def adjustments(session: Session, organization_id: int, query: str, chunk_ids: Sequence[int]) -> dict[int, float]:
    """The score change of each of ``chunk_ids`` for ``query``, from the verdicts given on them."""
    if not chunk_ids:
        return {}
    rows = session.execute(
        select(SuggestionVerdict.chunk_id, SuggestionVerdict.query, SuggestionVerdict.verdict)
        .where(tenant_clause(organization_id, SuggestionVerdict))
        .where(SuggestionVerdict.chunk_id.in_(list(chunk_ids)))
    ).all()
    totals: dict[int, float] = defaultdict(float)
    for chunk_id, asked, verdict in rows:
        overlap = similarity(asked, query)
        if chunk_id is not None and overlap >= MIN_SIMILARITY:
            totals[chunk_id] += overlap if verdict == "adopted" else -overlap
    return {chunk_id: WEIGHT * max(-1.0, min(1.0, total)) for chunk_id, total in totals.items() if total}


# ---------------------------------------------------------------- the weekly report


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def _reason_key(reason: str) -> str:
    return " ".join(reason.lower().replace("，", " ").replace("。", " ").replace(",", " ").split())


def compute_report(session: Session, organization_id: int, week_start: date) -> dict[str, Any]:
    """The adoption of the week from ``week_start`` (a Monday) to the next Monday."""
    start = datetime.combine(week_start, time.min).replace(tzinfo=utcnow().tzinfo)
    end = start + timedelta(days=7)
    rows = session.execute(
        select(SuggestionVerdict.user_id, SuggestionVerdict.source, SuggestionVerdict.verdict, SuggestionVerdict.reason)
        .where(tenant_clause(organization_id, SuggestionVerdict))
        .where(SuggestionVerdict.decided_at >= start, SuggestionVerdict.decided_at < end)
    ).all()
    users = {
        row.id: row
        for row in session.execute(
            select(User.id, User.display_name, User.username, User.department_id).where(
                tenant_clause(organization_id, User)
            )
        )
    }
    departments = dict(
        session.execute(select(Department.id, Department.name).where(tenant_clause(organization_id, Department))).all()
    )
    per_rep: dict[int | None, Counter[str]] = defaultdict(Counter)
    per_team: dict[int | None, Counter[str]] = defaultdict(Counter)
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for user_id, source, verdict, reason in rows:
        team = users[user_id].department_id if user_id in users else None
        for counter in (per_rep[user_id], per_team[team], per_source[source]):
            counter[verdict] += 1
        if verdict == "rejected" and reason:
            key = _reason_key(reason)
            reasons[key] += 1
            examples.setdefault(key, reason)

    def rate(counts: Counter[str]) -> dict[str, Any]:
        total = counts["adopted"] + counts["rejected"]
        return {
            "adopted": counts["adopted"],
            "rejected": counts["rejected"],
            "rate": round(counts["adopted"] / total, 3) if total else None,
        }

    def name_of(user_id: int | None) -> str:
        user = users.get(user_id) if user_id is not None else None
        return (user.display_name or user.username) if user else "—"

    total: Counter[str] = Counter()
    for counts in per_rep.values():
        total.update(counts)
    return {
        "week_start": week_start.isoformat(),
        "overall": rate(total),
        "reps": sorted(
            ({"user_id": uid, "name": name_of(uid), **rate(c)} for uid, c in per_rep.items()),
            key=lambda r: (r["name"], r["user_id"] or 0),
        ),
        "teams": sorted(
            (
                {"department_id": did, "name": departments.get(did, "—") if did is not None else "—", **rate(c)}
                for did, c in per_team.items()
            ),
            key=lambda r: (r["name"], r["department_id"] or 0),
        ),
        "sources": {source: rate(c) for source, c in sorted(per_source.items())},
        "rejection_reasons": [{"reason": examples[key], "count": count} for key, count in reasons.most_common(20)],
    }


def report(session: Session, actor: Actor, week_start: date | None = None) -> dict[str, Any]:
    """A week's report for the actor's organization (this week unless told)."""
    require(actor, REPORT)
    week = week_of(week_start or utcnow().date())
    return compute_report(session, actor.organization_id, week)


def store_report(session: Session, organization_id: int, week_start: date) -> AdoptionReport:
    """Compute and keep (or refresh) the week's report — what the weekly task does."""
    body = compute_report(session, organization_id, week_start)
    row = session.scalar(
        select(AdoptionReport)
        .where(tenant_clause(organization_id, AdoptionReport))
        .where(AdoptionReport.week_start == week_start)
    )
    if row is None:
        row = AdoptionReport(organization_id=organization_id, week_start=week_start, body=body)
        session.add(row)
    else:
        row.body, row.computed_at = body, utcnow()
    session.flush()
    return row


def stored_reports(session: Session, actor: Actor, *, limit: int = 12) -> list[AdoptionReport]:
    require(actor, REPORT)
    return list(
        session.scalars(
            select(AdoptionReport)
            .where(tenant_clause(actor.organization_id, AdoptionReport))
            .order_by(AdoptionReport.week_start.desc())
            .limit(limit)
        )
    )
