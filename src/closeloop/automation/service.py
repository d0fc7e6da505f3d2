"""Rules, decisions, pending actions, reviews and approvals as people use them (API, pages, CLI).

Every change is audited (and so is an outbox event too)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from closeloop.automation import asof, engine, explain, metrics
from closeloop.automation import definition as rule_definition
from closeloop.automation.models import (
    Decision,
    PendingAction,
    ReviewRequest,
    Rule,
    RuleVersion,
    WebhookDelivery,
    WebhookHost,
)
from closeloop.config import settings
from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Conflict, FieldProblem, Forbidden, NotFound, ValidationFailed
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.events.models import OutboxEvent
from closeloop.governance.fields import can_read_field, check_writable
from closeloop.governance.permissions import require
from closeloop.org.models import Department, User
from closeloop.org.notifications import Message, notify

MAX_UNDO_SECONDS = 7 * 86400


def allowed_hosts(session: Session, organization_id: int) -> frozenset[str]:
    return frozenset(session.scalars(select(WebhookHost.host).where(tenant_clause(organization_id, WebhookHost))))


def team_names(session: Session, organization_id: int) -> frozenset[str]:
    """The teams assignments may name: departments by name (lower case) and by ``department:<id>``."""
    rows = session.execute(select(Department.id, Department.name).where(tenant_clause(organization_id, Department)))
    return frozenset(name for id_, label in rows for name in (label.lower(), f"department:{id_}"))


def check_definition(session: Session, actor: Actor, definition: Any) -> dict[str, Any]:
    stored = rule_definition.validate(
        definition,
        metrics=metrics.METRIC_NAMES,
        allowed_hosts=allowed_hosts(session, actor.organization_id),
        teams=team_names(session, actor.organization_id),
    )
    problems = _field_access_problems(session, actor, stored)
    if problems:
        raise ValidationFailed(problems, message=problems[0].message)
    return stored


def _field_access_problems(session: Session, actor: Actor, stored: Mapping[str, Any]) -> list[FieldProblem]:
    """A rule may test only fields its author may read, and set only fields its author may set: a
    rule is no way round a field mask (a manager's rule on ``account.credit_line`` would read the
    credit line for them, in its backtest, its decisions and its notifications)."""
    problems: list[FieldProblem] = []

    def readable(path: str, name: str) -> None:
        noun, dot, field_name = name.partition(".")
        if dot and field_name and not can_read_field(session, actor, noun, field_name):
            problems.append(
                FieldProblem(
                    path, f"your role ({actor.role}) may not read {name}, so your rules may not use it", "forbidden"
                )
            )

    trigger = stored.get("trigger") or {}
    if trigger.get("event") == "field_changed":
        readable("trigger.field", str(trigger.get("field") or ""))
    for index, condition in enumerate(stored.get("conditions", [])):
        readable(f"conditions.{index}.field_or_metric", str(condition.get("field_or_metric") or ""))
    for index, action in enumerate(stored.get("actions", [])):
        if action.get("type") == "set_field":
            noun, _, field_name = str(action.get("target") or "").partition(".")
            try:
                check_writable(session, actor, noun, [field_name])
            except Forbidden:
                problems.append(
                    FieldProblem(
                        f"actions.{index}.target",
                        f"your role ({actor.role}) may not set {noun}.{field_name}, so your rules may not set it",
                        "forbidden",
                    )
                )
    return problems


def _within_reach(session: Session, actor: Actor, noun: str, ids: Sequence[int]) -> set[int]:
    """The ``ids`` of ``noun`` records the actor may read (a backtest shows no other)."""
    model = metrics.MODELS.get(noun)
    wanted = sorted(set(ids))
    if model is None or not wanted:
        return set()
    found: set[int] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        found.update(
            session.scalars(
                select(model.id).where(visibility_clause(actor, model, access=RowAccess.READ), model.id.in_(chunk))
            )
        )
    return found


def _undo(value: int | None) -> int:
    if value is None:
        return 30
    if not 0 <= value <= MAX_UNDO_SECONDS:
        raise ValidationFailed.one("undo_seconds", f"must be between 0 and {MAX_UNDO_SECONDS}")
    return value


def get_rule(session: Session, actor: Actor, rule_id: int) -> Rule:
    require(actor, "rules:read")
    rule = session.scalar(
        select(Rule).where(tenant_clause(actor.organization_id, Rule), Rule.id == rule_id, Rule.deleted_at.is_(None))
    )
    if rule is None:
        raise NotFound("rule", rule_id)
    return rule


def list_rules(session: Session, actor: Actor) -> list[Rule]:
    require(actor, "rules:read")
    return list(
        session.scalars(
            select(Rule).where(tenant_clause(actor.organization_id, Rule), Rule.deleted_at.is_(None)).order_by(Rule.id)
        )
    )


def versions(session: Session, actor: Actor, rule_id: int) -> list[RuleVersion]:
    rule = get_rule(session, actor, rule_id)
    return list(
        session.scalars(
            select(RuleVersion)
            .where(tenant_clause(actor.organization_id, RuleVersion), RuleVersion.rule_id == rule.id)
            .order_by(RuleVersion.version)
        )
    )


def current_version(session: Session, actor: Actor, rule: Rule) -> RuleVersion:
    found = session.scalar(
        select(RuleVersion).where(
            tenant_clause(actor.organization_id, RuleVersion),
            RuleVersion.rule_id == rule.id,
            RuleVersion.version == rule.current_version,
        )
    )
    assert found is not None  # every rule is created with its first version
    return found


def create_rule(
    session: Session,
    actor: Actor,
    *,
    name: str,
    definition: Any,
    text: str | None = None,
    lang: str | None = None,
    enabled: bool = False,
    undo_seconds: int | None = None,
) -> Rule:
    require(actor, "rules:write")
    if actor.user_id is None:
        raise Forbidden("A rule needs a person as its owner")
    if not name.strip():
        raise ValidationFailed.one("name", "may not be empty", "required")
    stored = check_definition(session, actor, definition)
    rule = Rule(
        organization_id=actor.organization_id,
        name=name.strip()[:200],
        owner_id=actor.user_id,
        enabled=enabled,
        current_version=1,
        undo_seconds=_undo(undo_seconds),
    )
    session.add(rule)
    session.flush()
    session.add(
        RuleVersion(
            organization_id=actor.organization_id, rule_id=rule.id, version=1, definition=stored,
            text=text, lang=lang, created_by_id=actor.user_id,
        )
    )  # fmt: skip
    session.flush()
    audit.record(
        session, actor, "rule.created", subject_type="rule", subject_id=rule.id,
        changes={"name": [None, rule.name], "definition": [None, stored], "enabled": [None, enabled]},
    )  # fmt: skip
    return rule


def update_rule(
    session: Session,
    actor: Actor,
    rule_id: int,
    *,
    name: str | None = None,
    definition: Any = None,
    text: str | None = None,
    lang: str | None = None,
    undo_seconds: int | None = None,
) -> Rule:
    """Change a rule; a new definition becomes a new version (decisions keep the one that fired)."""
    require(actor, "rules:write")
    rule = get_rule(session, actor, rule_id)
    changes: dict[str, list[Any]] = {}
    if name is not None and name.strip() and name.strip() != rule.name:
        changes["name"] = [rule.name, name.strip()[:200]]
        rule.name = name.strip()[:200]
    if undo_seconds is not None and undo_seconds != rule.undo_seconds:
        changes["undo_seconds"] = [rule.undo_seconds, _undo(undo_seconds)]
        rule.undo_seconds = undo_seconds
    if definition is not None:
        stored = check_definition(session, actor, definition)
        previous = current_version(session, actor, rule)
        if stored != previous.definition or (text is not None and text != previous.text):
            rule.current_version += 1
            session.add(
                RuleVersion(
                    organization_id=actor.organization_id, rule_id=rule.id, version=rule.current_version,
                    definition=stored, text=text, lang=lang, created_by_id=actor.user_id,
                )
            )  # fmt: skip
            changes["version"] = [rule.current_version - 1, rule.current_version]
            changes["definition"] = [previous.definition, stored]
    if changes:
        rule.updated_at = utcnow()
        session.flush()
        audit.record(session, actor, "rule.updated", subject_type="rule", subject_id=rule.id, changes=changes)
    return rule


def set_enabled(session: Session, actor: Actor, rule_id: int, enabled: bool) -> Rule:
    require(actor, "rules:write")
    rule = get_rule(session, actor, rule_id)
    if rule.enabled != enabled:
        rule.enabled = enabled
        rule.updated_at = utcnow()
        session.flush()
        audit.record(
            session, actor, "rule.enabled" if enabled else "rule.disabled", subject_type="rule",
            subject_id=rule.id, changes={"enabled": [not enabled, enabled]},
        )  # fmt: skip
    return rule


def delete_rule(session: Session, actor: Actor, rule_id: int) -> None:
    require(actor, "rules:write")
    rule = get_rule(session, actor, rule_id)
    rule.deleted_at = utcnow()
    rule.enabled = False
    rule.updated_at = utcnow()
    session.flush()
    audit.record(
        session, actor, "rule.deleted", subject_type="rule", subject_id=rule.id, changes={"deleted": [False, True]}
    )


def rule_body(session: Session, actor: Actor, rule: Rule) -> dict[str, Any]:
    version = current_version(session, actor, rule)
    return {
        "id": rule.id,
        "name": rule.name,
        "owner_id": rule.owner_id,
        "enabled": rule.enabled,
        "version": rule.current_version,
        "undo_seconds": rule.undo_seconds,
        "definition": version.definition,
        "text": version.text,
        "lang": version.lang,
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat(),
    }


# --- decisions ------------------------------------------------------------------------------------


def _decision_scope(actor: Actor) -> ColumnElement[bool]:
    """Everyone reads decisions about records they can see; rule designers also read their rules' own."""
    clause = tenant_clause(actor.organization_id, Decision)
    if actor.scope is RowScope.ALL:
        return clause
    mine: ColumnElement[bool] = Decision.record_owner_id.in_(sorted(actor.owner_ids))
    if actor.can("rules:read") and actor.user_id is not None:
        owned_rules = select(Rule.id).where(tenant_clause(actor.organization_id, Rule), Rule.owner_id == actor.user_id)
        mine = or_(mine, Decision.rule_id.in_(owned_rules))
    return clause & mine


_T = TypeVar("_T", Decision, PendingAction)


def readable_only(session: Session, actor: Actor, rows: Sequence[_T]) -> list[_T]:
    """``rows`` (decisions or pending actions) about records the actor may read: a rule one owns,
    or a record once owned by one's team, is no way to see a record one cannot open (a manager's
    rule on a lead passed to another region). People (forecast rules) keep the scope above."""
    if actor.scope is RowScope.ALL:
        return list(rows)
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.record_type in metrics.MODELS and row.record_type != "user":
            wanted.setdefault(row.record_type, set()).add(row.record_id)
    reach = {kind: _within_reach(session, actor, kind, sorted(ids)) for kind, ids in wanted.items()}
    return [row for row in rows if row.record_type not in reach or row.record_id in reach[row.record_type]]


def decisions(
    session: Session,
    actor: Actor,
    *,
    record_type: str | None = None,
    record_id: int | None = None,
    rule_id: int | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Decision]:
    require(actor, "decisions:read")
    statement: Select[Decision] = select(Decision).where(_decision_scope(actor))
    if record_type:
        statement = statement.where(Decision.record_type == record_type)
    if record_id is not None:
        statement = statement.where(Decision.record_id == record_id)
    if rule_id is not None:
        statement = statement.where(Decision.rule_id == rule_id)
    if since is not None:
        statement = statement.where(Decision.created_at >= since)
    found = list(session.scalars(statement.order_by(Decision.id.desc()).limit(min(max(limit, 1), 500))))
    return readable_only(session, actor, found)


def get_decision(session: Session, actor: Actor, decision_id: int) -> Decision:
    require(actor, "decisions:read")
    found = session.scalar(select(Decision).where(_decision_scope(actor), Decision.id == decision_id))
    if found is None or not readable_only(session, actor, [found]):
        raise NotFound("decision", decision_id)
    return found


def decision_body(decision: Decision, locale: str = "zh_CN") -> dict[str, Any]:
    return {
        "id": decision.id,
        "rule_id": decision.rule_id,
        "rule_version": decision.rule_version,
        "rule_name": decision.rule_name,
        "event_id": decision.event_id,
        "event_type": decision.event_type,
        "record_type": decision.record_type,
        "record_id": decision.record_id,
        "conditions": decision.conditions,
        "actions": decision.actions,
        "why": decision.why_en if locale == "en" else decision.why_zh,
        "why_all": {"zh_CN": decision.why_zh, "en": decision.why_en},
        "created_at": decision.created_at.isoformat(),
    }


MASKED = "•••"


def mask_checker(session: Session, actor: Actor) -> Any:
    """``hidden(condition)``: whether a condition reads a field the actor's masks hide."""
    from closeloop.crm import records

    cache: dict[str, frozenset[str]] = {}

    def hidden(condition: Mapping[str, Any]) -> bool:
        if condition.get("field_or_metric") == "forecast_deviation":  # a forecast is nothing but amounts
            noun, field = "opportunity", "amount"
        else:
            noun, _, field = str(condition.get("field_or_metric", "")).partition(".")
        if not field or noun not in metrics.MODELS:
            return False
        if noun not in cache:
            cache[noun] = records.masked(session, actor, noun)
        return field in cache[noun] or field.removeprefix("custom.") in cache[noun]

    return hidden


def visible_body(session: Session, actor: Actor, decision: Decision, hidden: Any = None) -> dict[str, Any]:
    """A decision as the actor may read it: a condition on a field their masks hide shows no value,
    and the reason is written again without it (in both languages)."""
    body = decision_body(decision, actor.locale)
    hidden = hidden or mask_checker(session, actor)
    if not any(hidden(c) for c in decision.conditions):
        return body
    conditions = [
        {**{k: v for k, v in c.items() if k != metrics.DETAIL}, "seen": MASKED} if hidden(c) else c
        for c in decision.conditions
    ]
    why_zh, why_en = explain.why(
        rule_name=decision.rule_name, version=decision.rule_version, event_type=decision.event_type,
        record_type=decision.record_type, record_id=decision.record_id, conditions=conditions,
        actions=[a for a in decision.actions if isinstance(a, Mapping)],
        record_name=explain.name_of(
            engine.load_record(session, actor.organization_id, decision.record_type, decision.record_id)
        ),
    )  # fmt: skip
    return body | {
        "conditions": conditions,
        "why": why_en if actor.locale == "en" else why_zh,
        "why_all": {"zh_CN": why_zh, "en": why_en},
    }


def account_decisions(
    session: Session,
    actor: Actor,
    account_id: int,
    related: Mapping[str, list[int]],
    *,
    limit: int = 50,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The decisions about an account and the records of it the caller can see (``related``: kind →
    ids, e.g. its opportunities and contacts) — for the account's 360° page."""
    return decisions_about(session, actor, {"account": [account_id], **related}, limit=limit, now=now)


def decisions_about(
    session: Session,
    actor: Actor,
    wanted: Mapping[str, list[int]],
    *,
    limit: int = 50,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The decisions about the records ``wanted`` (kind → ids) the caller may read, newest first, each
    with its actions still in the undo window (and the seconds left), masked values hidden."""
    if not actor.can("decisions:read"):
        return []
    about = []
    for kind, ids in wanted.items():
        if ids:
            about.append((Decision.record_type == kind) & Decision.record_id.in_(sorted(set(ids))))
    if not about:
        return []
    found = readable_only(
        session,
        actor,
        list(
            session.scalars(
                select(Decision).where(_decision_scope(actor), or_(*about)).order_by(Decision.id.desc()).limit(limit)
            )
        ),
    )
    if not found:
        return []
    waiting: dict[int, list[dict[str, Any]]] = {}
    for pending in session.scalars(
        select(PendingAction).where(
            tenant_clause(actor.organization_id, PendingAction),
            PendingAction.decision_id.in_([d.id for d in found]),
            PendingAction.status == "pending",
        )
    ):
        lang = "en" if actor.locale == "en" else "zh"
        label = explain.action_text(pending.action, lang)
        waiting.setdefault(pending.decision_id, []).append(pending_body(pending, now) | {"label": label})
    hidden = mask_checker(session, actor)
    lang = "en" if actor.locale == "en" else "zh"
    return [
        visible_body(session, actor, d, hidden)
        | {
            "waiting": waiting.get(d.id, []),
            "record_label": f"{explain.record_label(d.record_type, lang)} #{d.record_id}",
        }
        for d in found
    ]


# --- the undo window ----------------------------------------------------------------------------------


def pending_actions(
    session: Session, actor: Actor, *, status: str | None = "pending", limit: int = 200
) -> list[PendingAction]:
    require(actor, "decisions:read")
    statement = (
        select(PendingAction).join(Decision, Decision.id == PendingAction.decision_id).where(_decision_scope(actor))
    )
    if status:
        statement = statement.where(PendingAction.status == status)
    found = list(session.scalars(statement.order_by(PendingAction.id.desc()).limit(limit)))
    return readable_only(session, actor, found)


def cancel_pending(session: Session, actor: Actor, pending_id: int) -> PendingAction:
    """Stop an action before its undo window ends; the cancellation is kept (and audited)."""
    require(actor, "decisions:read")
    pending = session.scalar(
        select(PendingAction)
        .join(Decision, Decision.id == PendingAction.decision_id)
        .where(_decision_scope(actor), PendingAction.id == pending_id)
    )
    if pending is None or not readable_only(session, actor, [pending]):
        raise NotFound("pending action", pending_id)
    if pending.status != "pending":
        raise Conflict(f"the action is already {pending.status}", code="not_pending")
    pending.status = "cancelled"
    pending.cancelled_by_id = actor.user_id
    pending.finished_at = utcnow()
    pending.result = {"cancelled_by": actor.label}
    decision = session.get(Decision, pending.decision_id)
    if decision is not None:
        engine._mirror(decision, pending)
    session.flush()
    audit.record(
        session, actor, "pending_action.cancelled", subject_type="pending_action", subject_id=pending.id,
        changes={"status": ["pending", "cancelled"]},
    )  # fmt: skip
    return pending


def rule_names(session: Session, actor: Actor, rule_ids: set[int]) -> dict[int, str]:
    """The names of rules (for the undo window): the decision already let the viewer see them."""
    if not rule_ids:
        return {}
    rows = session.execute(
        select(Rule.id, Rule.name).where(tenant_clause(actor.organization_id, Rule), Rule.id.in_(sorted(rule_ids)))
    ).all()
    return {row.id: row.name for row in rows}


def pending_body(pending: PendingAction, now: datetime | None = None) -> dict[str, Any]:
    moment = now or utcnow()
    return {
        "id": pending.id,
        "decision_id": pending.decision_id,
        "rule_id": pending.rule_id,
        "action": pending.action,
        "record_type": pending.record_type,
        "record_id": pending.record_id,
        "status": pending.status,
        "run_after": pending.run_after.isoformat(),
        "seconds_left": max(0, int((pending.run_after - moment).total_seconds())) if pending.status == "pending" else 0,
        "result": pending.result,
        "cancelled_by_id": pending.cancelled_by_id,
        "finished_at": pending.finished_at.isoformat() if pending.finished_at else None,
    }


# --- human review -----------------------------------------------------------------------------------


def request_review(session: Session, actor: Actor, decision_id: int, *, reason: str) -> ReviewRequest:
    """Anyone who can see a decision may ask for a person to look at it: the rule owner's manager
    (the owner, when they have none)."""
    if actor.user_id is None:
        raise Forbidden("Only a person can ask for a review")
    if not reason.strip():
        raise ValidationFailed.one("reason", "say what should be looked at", "required")
    decision = get_decision(session, actor, decision_id)
    rule = session.get(Rule, decision.rule_id)
    assert rule is not None
    owner = session.scalar(select(User).where(tenant_clause(actor.organization_id, User), User.id == rule.owner_id))
    reviewer_id = owner.manager_id if owner is not None and owner.manager_id is not None else rule.owner_id
    review = ReviewRequest(
        organization_id=actor.organization_id, decision_id=decision.id, requested_by_id=actor.user_id,
        reviewer_id=reviewer_id, reason=reason.strip(), status="open",
    )  # fmt: skip
    session.add(review)
    session.flush()
    notify(
        session,
        organization_id=actor.organization_id,
        user_id=reviewer_id,
        message=Message(
            "automation.review",
            f"请复核规则决定:{decision.rule_name}",
            f"Review requested: {decision.rule_name}",
            f"{actor.label}:{reason.strip()}\n{decision.why_zh}",
            f"{actor.label}: {reason.strip()}\n{decision.why_en}",
            "/automation/reviews",
        ),
    )
    audit.record(
        session, actor, "review.requested", subject_type="decision", subject_id=decision.id,
        changes={"reviewer_id": [None, reviewer_id], "reason": [None, reason.strip()]},
    )  # fmt: skip
    return review


def reviews(session: Session, actor: Actor, *, status: str | None = None) -> list[ReviewRequest]:
    """Review requests the actor asked for or must answer (all of them, for an organization-wide role).
    Reviews are of rule decisions, so reading them takes ``decisions:read`` (partner users have none)."""
    require(actor, "decisions:read")
    statement = select(ReviewRequest).where(tenant_clause(actor.organization_id, ReviewRequest))
    if actor.scope is not RowScope.ALL:
        user_id = actor.user_id or 0
        statement = statement.where(or_(ReviewRequest.reviewer_id == user_id, ReviewRequest.requested_by_id == user_id))
    if status:
        statement = statement.where(ReviewRequest.status == status)
    return list(session.scalars(statement.order_by(ReviewRequest.id.desc()).limit(200)))


def resolve_review(session: Session, actor: Actor, review_id: int, *, resolution: str) -> ReviewRequest:
    review = session.scalar(
        select(ReviewRequest).where(tenant_clause(actor.organization_id, ReviewRequest), ReviewRequest.id == review_id)
    )
    if review is None:
        raise NotFound("review", review_id)
    if review.reviewer_id != actor.user_id:
        raise Forbidden("Only the reviewer can answer this review")
    if review.status != "open":
        raise Conflict("the review is already answered", code="not_open")
    review.status, review.resolution, review.resolved_at = "resolved", resolution.strip(), utcnow()
    session.flush()
    notify(
        session,
        organization_id=actor.organization_id,
        user_id=review.requested_by_id,
        message=Message(
            "automation.review", "复核已答复", "Your review was answered", resolution, resolution, "/automation/reviews"
        ),
    )
    audit.record(
        session, actor, "review.resolved", subject_type="review", subject_id=review.id,
        changes={"status": ["open", "resolved"]},
    )  # fmt: skip
    return review


def review_body(review: ReviewRequest) -> dict[str, Any]:
    return {
        "id": review.id,
        "decision_id": review.decision_id,
        "requested_by_id": review.requested_by_id,
        "reviewer_id": review.reviewer_id,
        "reason": review.reason,
        "status": review.status,
        "resolution": review.resolution,
        "created_at": review.created_at.isoformat(),
        "resolved_at": review.resolved_at.isoformat() if review.resolved_at else None,
    }


# --- webhook hosts --------------------------------------------------------------------------------------


def webhook_hosts(session: Session, actor: Actor) -> list[WebhookHost]:
    """The hosts outgoing webhooks may call (administrators: they decide where data may leave to)."""
    require(actor, "organization:manage")
    return list(
        session.scalars(
            select(WebhookHost).where(tenant_clause(actor.organization_id, WebhookHost)).order_by(WebhookHost.host)
        )
    )


def remove_webhook_host(session: Session, actor: Actor, host_id: int) -> None:
    """Stop webhooks to a host: rules naming it are refused when saved, and deliveries still queued
    for it fail at their next attempt instead of being sent."""
    require(actor, "organization:manage")
    row = session.scalar(
        select(WebhookHost).where(tenant_clause(actor.organization_id, WebhookHost), WebhookHost.id == host_id)
    )
    if row is None:
        raise NotFound("webhook host", host_id)
    host = row.host
    session.delete(row)
    session.flush()
    audit.record(
        session, actor, "webhook_host.deleted", subject_type="webhook_host", subject_id=host_id,
        changes={"host": [host, None]},
    )  # fmt: skip


def webhook_deliveries(
    session: Session, actor: Actor, *, status: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """The delivery log: outgoing webhooks with their status, attempts and last error, for the
    decisions the actor can see."""
    require(actor, "decisions:read")
    statement = (
        select(WebhookDelivery)
        .join(Decision, Decision.id == WebhookDelivery.decision_id)
        .where(tenant_clause(actor.organization_id, WebhookDelivery), _decision_scope(actor))
    )
    if status:
        statement = statement.where(WebhookDelivery.status == status)
    return list(session.scalars(statement.order_by(WebhookDelivery.id.desc()).limit(min(max(limit, 1), 500))))


def allow_webhook_host(session: Session, actor: Actor, host: str) -> tuple[WebhookHost, str]:
    """Allow outgoing webhooks to ``host``; returns the row and the signing secret (shown once)."""
    require(actor, "organization:manage")
    host = host.strip().lower()
    if not host or "/" in host or " " in host:
        raise ValidationFailed.one("host", "give a host name such as hooks.example.com")
    if host in allowed_hosts(session, actor.organization_id):
        raise Conflict(f"{host} is already allowed", field_name="host")
    secret = secrets.token_hex(32)
    row = WebhookHost(organization_id=actor.organization_id, host=host, secret=secret)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "webhook_host.created",
        subject_type="webhook_host",
        subject_id=row.id,
        changes={"host": [None, host]},
    )
    return row, secret


# --- backtest ---------------------------------------------------------------------------------------------


@dataclass
class Backtest:
    days: int
    fired: int
    records: list[tuple[str, int]]
    decisions: list[dict[str, Any]]
    checked: int
    #: per record it fired on, most firings first: kind, id, name, how many times, first and last time
    per_record: list[dict[str, Any]] = field(default_factory=list)
    #: when the run had to be cut to stay quick: the number of days it did cover (the latest ones)
    covered_days: int | None = None


#: the most (record, moment) checks one backtest makes: trying a rule answers in seconds (a daily rule
#: over the demo's 2 400 accounts covers 30 days in 73 000 checks); a longer run covers only the
#: latest days and says so (:attr:`Backtest.covered_days`)
MAX_CHECKS = 120_000


def backtest(
    session: Session,
    actor: Actor,
    definition: Any,
    *,
    days: int,
    name: str = "",
    now: datetime | None = None,
    keep: int = 200,
) -> Backtest:
    """What a rule would have done over the last ``days`` days, without doing it: replay the outbox
    events its trigger wakes on (a scheduled rule: its checks, once per period, over the records that
    existed then). Each check sees the record — and the records it points to — as it was at that
    moment, rebuilt from the audit trail (:mod:`closeloop.automation.asof`), and history measures
    counted up to that moment.

    The window is the ``days`` days that end now, the start excluded: ``(now − days, now]``, so a
    daily rule is checked ``days`` times (30 days → 30 checks), as the label "over the last 30 days"
    says; its last check is today's."""
    require(actor, "rules:read")
    if not 1 <= days <= 366:
        raise ValidationFailed.one("days", "must be between 1 and 366")
    stored = check_definition(session, actor, definition)
    moment = now or utcnow()
    start = moment - timedelta(days=days)
    rule = engine.CompiledRule(
        0, 0, name or "trial run", actor.user_id or 0, 0, stored,
        rule_definition.trigger_of(stored), rule_definition.record_type_of(stored),
    )  # fmt: skip
    fired: list[dict[str, Any]] = []
    records: dict[tuple[str, int], None] = {}
    checked = 0
    stretches: set[tuple[str, int, str]] = set()  # a stretch or streak fires once (engine.once_key)

    def first_of_its_stretch(evaluation: engine.Evaluation) -> bool:
        once = engine.once_key(evaluation)
        if once is None:
            return True
        seen = (evaluation.record_type, evaluation.record_id, once)
        if seen in stretches:
            return False
        stretches.add(seen)
        return True

    tally: dict[tuple[str, int], dict[str, Any]] = {}

    def keep_one(evaluation: engine.Evaluation, event_type: str, event_id: int | None, at: datetime) -> None:
        records[(evaluation.record_type, evaluation.record_id)] = None
        counted = tally.setdefault(
            (evaluation.record_type, evaluation.record_id),
            {"record_type": evaluation.record_type, "record_id": evaluation.record_id, "count": 0,
             "name": explain.name_of(evaluation.record), "first_at": at.isoformat()},
        )  # fmt: skip
        counted["count"] += 1
        counted["last_at"] = at.isoformat()
        if len(fired) < keep:
            why_zh, why_en = engine.describe(evaluation, event_type)
            fired.append(
                {
                    "record_type": evaluation.record_type, "record_id": evaluation.record_id,
                    "event_id": event_id, "event_type": event_type, "at": at.isoformat(),
                    "conditions": evaluation.conditions, "actions": stored["actions"],
                    "why": why_en if actor.locale == "en" else why_zh, "name": explain.name_of(evaluation.record),
                }
            )  # fmt: skip

    count = 0
    covered: int | None = None
    rewinder = asof.Rewinder(session, actor.organization_id, start)
    related = _related_nouns(stored)
    # the measures over activities read them once for the whole run (metrics.History)
    reads_history = any(str(c.get("field_or_metric")) in _HISTORY_MEASURES for c in stored.get("conditions", []))

    def rewound(noun: str, record_id: int, at: datetime) -> Any:
        return rewinder.as_of(noun, record_id, at)

    def rewound_many(noun: str, ids: Sequence[int], at: datetime) -> dict[int, Any]:
        # a formula's related rows (an account's orders), loaded in one batch, then rebuilt for ``at``
        rewinder.load(noun, ids)
        return {record_id: rewinder.as_of(noun, record_id, at) for record_id in ids}

    def preload_related(record_type: str) -> None:
        # the records conditions read through this one (an opportunity's account), in one batch per kind
        rows = rewinder.rows(record_type)
        for noun in related - {record_type}:
            rewinder.load(noun, (getattr(row, f"{noun}_id", None) for row in rows))

    if rule.trigger.event_type is not None:
        events_seen = [
            event
            for event in session.scalars(
                select(OutboxEvent)
                .where(
                    tenant_clause(actor.organization_id, OutboxEvent),
                    OutboxEvent.event_type == rule.trigger.event_type,
                    OutboxEvent.occurred_at > start,
                    OutboxEvent.occurred_at <= moment,
                    OutboxEvent.actor_kind != "rule",
                )
                .order_by(OutboxEvent.id)
            )
            if engine.trigger_matches(rule.trigger, event.payload or {})
        ]
        # only what the person trying the rule may see: no other record's id, values or count
        reachable = {
            kind: _within_reach(
                session, actor, kind, [e.subject_id for e in events_seen if e.subject_type == kind and e.subject_id]
            )
            for kind in {e.subject_type for e in events_seen}
        }
        events_seen = [e for e in events_seen if e.subject_id is not None and e.subject_id in reachable[e.subject_type]]
        if len(events_seen) > MAX_CHECKS:  # the latest events only, and the days they cover
            events_seen = events_seen[-MAX_CHECKS:]
            oldest = as_utc(events_seen[0].occurred_at)
            covered = max(1, min(days, (moment - oldest).days))
        by_kind: dict[str, set[int]] = {}
        for event in events_seen:
            if event.subject_id is not None:
                by_kind.setdefault(event.subject_type, set()).add(event.subject_id)
        histories: dict[str, metrics.History] = {}
        for kind, ids in by_kind.items():
            rewinder.load(kind, ids)
            preload_related(kind)
            if reads_history and kind in metrics.History.KINDS:
                histories[kind] = metrics.History(session, actor.organization_id, kind, sorted(ids), moment)
        for event in events_seen:
            record = rewinder.as_of(event.subject_type, event.subject_id, event.occurred_at)
            ctx = metrics.Context(
                session,
                actor.organization_id,
                event.subject_type,
                record,
                event.occurred_at,
                lookup=rewound,
                lookup_many=rewound_many,
                history=histories.get(event.subject_type),
            )
            checked += 1
            evaluation = engine.evaluate(ctx, rule, record_id=event.subject_id or 0, full=True)
            if evaluation.fires and first_of_its_stretch(evaluation):
                count += 1
                keep_one(evaluation, event.event_type, event.id, event.occurred_at)
    else:
        step = timedelta(hours=1) if rule.trigger.frequency == "hourly" and days <= 7 else timedelta(days=1)
        existing = engine.candidates_of(session, actor.organization_id, rule.record_type, as_of=moment)
        reachable_ids = _within_reach(session, actor, rule.record_type, [row.id for row in existing])
        existing = [row for row in existing if row.id in reachable_ids]
        per_day = len(existing) * (24 if step == timedelta(hours=1) else 1)
        if per_day and per_day * days > MAX_CHECKS:  # the latest days only
            covered = max(1, MAX_CHECKS // per_day)
            start = moment - timedelta(days=covered)
        rewinder.load(rule.record_type, (row.id for row in existing))
        preload_related(rule.record_type)
        history = (
            metrics.History(session, actor.organization_id, rule.record_type, [row.id for row in existing], moment)
            if reads_history and rule.record_type in metrics.History.KINDS
            else None
        )
        tick = start + step  # the window is (start, moment]: ``days`` daily checks, not days + 1
        seen_periods: set[tuple[int, str]] = set()
        while tick <= moment:
            key = engine.period_key(rule.trigger, tick) if step == timedelta(hours=1) else _period_of_day(rule, tick)
            if key is not None:
                for row in existing:
                    if (row.id, key) in seen_periods:
                        continue
                    record = rewinder.as_of(rule.record_type, row.id, tick)
                    if record is None:
                        continue
                    ctx = metrics.Context(
                        session,
                        actor.organization_id,
                        rule.record_type,
                        record,
                        tick,
                        lookup=rewound,
                        lookup_many=rewound_many,
                        history=history,
                    )
                    checked += 1
                    evaluation = engine.evaluate(ctx, rule, record_id=row.id, full=True)
                    if evaluation.fires and first_of_its_stretch(evaluation):
                        seen_periods.add((row.id, key))
                        count += 1
                        keep_one(evaluation, "schedule", None, tick)
            tick += step
    per_record = sorted(tally.values(), key=lambda r: (-r["count"], r["record_type"], r["record_id"]))
    return Backtest(days, count, list(records), fired, checked, per_record, covered)


_HISTORY_MEASURES = frozenset(
    {"time_since_last_contact", "time_since_last_visit", "email_unreplied", "call_unanswered", "customer_replied",
     "visit_count"}
)  # fmt: skip


def _related_nouns(definition: Mapping[str, Any]) -> set[str]:
    """The kinds of record a rule's conditions read (``account.tier`` → account; measures read the account)."""
    nouns = {"account"}
    for condition in definition.get("conditions", []):
        noun = str(condition.get("field_or_metric", "")).partition(".")[0]
        if noun in metrics.MODELS:
            nouns.add(noun)
    if any(str(c.get("field_or_metric")) == "stage_duration" for c in definition.get("conditions", [])):
        nouns.add("opportunity")
    return nouns


def _period_of_day(rule: engine.CompiledRule, day: datetime) -> str | None:
    """For a day-by-day backtest: the period key of the rule's run on that day, if it runs that day."""
    hour = 8 if rule.trigger.frequency == "hourly" else int(str(rule.trigger.spec.get("time") or "08:00").split(":")[0])
    local = as_utc(day).astimezone(ZoneInfo(settings.business_timezone))  # the rule's hour on that local day
    return engine.period_key(rule.trigger, local.replace(hour=hour, minute=0, second=0, microsecond=0))


def backtest_body(result: Backtest) -> dict[str, Any]:
    return {
        "days": result.days,
        "would_fire": result.fired,
        "checked": result.checked,
        "records": [{"record_type": t, "record_id": i} for t, i in result.records],
        "per_record": result.per_record,
        "covered_days": result.covered_days,
        "decisions": result.decisions,
    }


def definition_from(data: Mapping[str, Any]) -> Any:
    return data.get("definition")
