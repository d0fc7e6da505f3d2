"""What a firing does. Notifications, escalations, summaries and approval requests happen with the
decision; tasks, field changes, assignments and webhooks wait out the rule's undo window as
:class:`PendingAction` rows and run through the record services (audited) when it ends."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.approvals import service as approval_service
from closeloop.automation.definition import ROLE_ALIASES
from closeloop.automation.metrics import MODELS
from closeloop.automation.models import Decision, WebhookHost
from closeloop.core.actor import Actor, ActorKind
from closeloop.core.clock import as_utc
from closeloop.crm import records
from closeloop.crm.activities.models import Activity
from closeloop.crm.tasks.service import NewTask, open_system_tasks
from closeloop.db.scope import tenant_clause
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.notifications import Message, notify

WEBHOOK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Firing:
    """Who and what an action is about."""

    organization_id: int
    rule_id: int
    rule_name: str
    rule_owner_id: int
    decision_id: int
    record_type: str
    record_id: int
    why_zh: str
    why_en: str
    now: datetime
    #: the record, when the caller has it loaded already
    record: Any = None


def _record(session: Session, firing: Firing) -> Any:
    if firing.record is not None:
        return firing.record
    model = MODELS.get(firing.record_type)
    if model is None:
        return None
    return session.scalar(
        select(model).where(tenant_clause(firing.organization_id, model), model.id == firing.record_id)
    )


def _owner_of(record: Any) -> int | None:
    if record is None:
        return None
    if isinstance(record, Activity):
        return record.user_id
    return getattr(record, "owner_id", None)


def _account_owner(session: Session, firing: Firing, record: Any) -> int | None:
    if firing.record_type == "account":
        return _owner_of(record)
    account_id = getattr(record, "account_id", None)
    if account_id is None:
        return _owner_of(record)
    found = _record(session, replace(firing, record_type="account", record_id=account_id, record=None))
    return _owner_of(found)


def _user(session: Session, organization_id: int, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    return session.scalar(select(User).where(tenant_clause(organization_id, User), User.id == user_id))


def recipients(session: Session, firing: Firing, target: str) -> list[int]:
    """The users a target names (``owner``, ``manager``, ``role:sales_director`` …)."""
    record = _record(session, firing)
    if target == "self":
        return [firing.rule_owner_id]
    if target.startswith("user:"):
        found = _user(session, firing.organization_id, int(target[5:]))
        return [found.id] if found is not None else []
    if target.startswith("role:"):
        role = ROLE_ALIASES.get(target[5:], target[5:])
        return list(
            session.scalars(
                select(User.id)
                .where(tenant_clause(firing.organization_id, User), User.role == role, User.is_active.is_(True))
                .order_by(User.id)
            )
        )
    owner_id = _account_owner(session, firing, record) if target == "account_owner" else _owner_of(record)
    if target == "manager":
        owner = _user(session, firing.organization_id, owner_id)
        manager_id = owner.manager_id if owner is not None else None
        return [manager_id] if manager_id is not None else []
    return [owner_id] if owner_id is not None else []


def _link(firing: Firing) -> str:
    return f"/automation/decisions?record_type={firing.record_type}&record_id={firing.record_id}"


def _tell(
    session: Session, firing: Firing, users: list[int], kind: str, title: tuple[str, str], body: tuple[str, str]
) -> None:
    for user_id in users:
        notify(
            session,
            organization_id=firing.organization_id,
            user_id=user_id,
            message=Message(kind, title[0], title[1], body[0], body[1], _link(firing)),
        )


def summary(session: Session, firing: Firing, last_n: int) -> tuple[str, str]:
    """The last ``last_n`` interactions of the record (its account's, for an account), newest first."""
    record = _record(session, firing)
    clauses = [tenant_clause(firing.organization_id, Activity), Activity.occurred_at <= firing.now]
    if firing.record_type in ("opportunity", "lead"):
        clauses.append(getattr(Activity, f"{firing.record_type}_id") == firing.record_id)
    else:
        account_id = firing.record_id if firing.record_type == "account" else getattr(record, "account_id", None)
        clauses.append(Activity.account_id == (account_id or 0))
    rows = session.scalars(
        select(Activity).where(*clauses).order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(last_n)
    ).all()
    zh_lines, en_lines = [], []
    for row in rows:
        replied = {True: ("已回复", "replied"), False: ("未回复", "no reply"), None: ("", "")}[row.is_replied]
        moment = as_utc(row.occurred_at).strftime("%Y-%m-%d")
        text = row.subject or row.outcome or ""
        zh_lines.append(f"{moment} {row.kind} {row.direction} {text} {replied[0]}".strip())
        en_lines.append(f"{moment} {row.kind} {row.direction} {text} {replied[1]}".strip())
    if not rows:
        return "没有沟通记录。", "No interactions recorded."
    return "\n".join(zh_lines), "\n".join(en_lines)


def run_now(session: Session, firing: Firing, action: Mapping[str, Any]) -> dict[str, Any]:
    """Do an action that does not wait (notify, escalate, push_summary, require_approval)."""
    kind, target = str(action["type"]), str(action.get("target") or "manager")
    params = action.get("params") or {}
    why = (firing.why_zh, firing.why_en)
    if kind == "require_approval":
        # the approval engine's inbox holds it, beside every other approval (CN-4)
        role = ROLE_ALIASES.get(target[5:], target[5:]) if target.startswith("role:") else target
        actor = rule_actor(session, firing)
        approval, users = approval_service.request_for_rule(
            session,
            actor,
            record_type=firing.record_type,
            record_id=firing.record_id,
            role=role,
            decision_id=firing.decision_id,
            why=firing.why_zh + "\n" + firing.why_en,
        )
        return {"approval_id": approval.id, "notified": users}
    users = recipients(session, firing, target)
    if kind == "push_summary":
        last_n = int(params.get("last_n") or 5)
        zh, en = summary(session, firing, last_n)
        _tell(
            session,
            firing,
            users,
            "automation.summary",
            ("沟通摘要", "Interaction summary"),
            (f"{why[0]}\n{zh}", f"{why[1]}\n{en}"),
        )
        return {"notified": users, "last_n": last_n}
    if kind == "escalate":
        _tell(session, firing, users, "automation.escalation", ("已升级给您", "Escalated to you"), why)
        return {"notified": users}
    _tell(
        session, firing, users, "automation.notice", (f"规则提醒:{firing.rule_name}", f"Rule: {firing.rule_name}"), why
    )
    return {"notified": users}


def rule_actor(session: Session, firing: Firing) -> Actor:
    """The rule acts with its owner's rights (field security and all), marked as a rule in the audit trail."""
    owner = _user(session, firing.organization_id, firing.rule_owner_id)
    base = org_service.system_actor(firing.organization_id) if owner is None else org_service.actor_for(session, owner)
    return replace(base, kind=ActorKind.RULE, label=f"rule {firing.rule_id}: {firing.rule_name}"[:200])


def _due(params: Mapping[str, Any], now: datetime) -> date | None:
    if params.get("due") == "today":
        return now.date()
    due_in = params.get("due_in")
    if not isinstance(due_in, Mapping):
        return None
    value, unit = float(due_in.get("value", 0)), str(due_in.get("unit", "day"))
    days = {"hour": value / 24, "day": value, "business_day": value * 7 / 5, "week": value * 7, "month": value * 30}
    return (now + timedelta(days=days.get(unit, value))).date()


def run_deferred(session: Session, firing: Firing, action: Mapping[str, Any], *, delivery_id: int) -> dict[str, Any]:
    """Do an action whose undo window has ended (create_task, set_field, assign, webhook)."""
    kind, target = (
        str(action["type"]),
        str(action.get("target") or ("auto" if action["type"] == "apply_playbook" else "owner")),
    )
    params = action.get("params") or {}
    actor = rule_actor(session, firing)
    if kind == "create_task":
        owners: list[int | None] = list(recipients(session, firing, target)) or [None]
        ids = open_system_tasks(
            session,
            actor,
            [
                NewTask(
                    title=str(params.get("title") or firing.rule_name),
                    owner_id=user_id,
                    subject_type=firing.record_type,
                    subject_id=firing.record_id,
                    link=_link(firing),
                    source=f"rule:{firing.rule_id}",
                    description=firing.why_zh + "\n" + firing.why_en,
                    due_on=_due(params, firing.now),
                )
                for user_id in owners
            ],
        )
        return {"task_ids": ids}
    if kind in ("set_field", "assign"):
        if kind == "assign":
            users = recipients(session, firing, target)
            if not users:
                raise ValueError(f"nobody to assign to ({target})")
            noun, field, value = firing.record_type, "owner_id", users[0]
            value_any: Any = value
        else:
            noun, _, field = target.partition(".")
            value_any = params.get("value")
        record_type = records.record_type_for(noun)
        record_id = firing.record_id if noun == firing.record_type else getattr(_record(session, firing), f"{noun}_id")
        record = records.get(session, actor, record_type, int(record_id))
        records.update(session, actor, record_type, record, {field: value_any})
        return {"record": f"{noun}:{record_id}", "field": field, "value": value_any}
    if kind == "webhook":
        return send_webhook(session, firing, target, delivery_id=delivery_id)
    if kind == "apply_playbook":
        from closeloop.automation import playbooks

        if firing.record_type != "opportunity":
            raise ValueError("a playbook is applied to an opportunity")
        return playbooks.apply(session, actor, firing.record_id, target or "auto", firing.now, _link(firing))
    raise ValueError(f"unknown action {kind}")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(session: Session, firing: Firing, url: str, *, delivery_id: int) -> dict[str, Any]:
    """POST the decision to ``url`` — only to a host the organization allowed — signed with
    HMAC-SHA256 of the body under that host's secret (``X-Closeloop-Signature``)."""
    host = (urlsplit(url).hostname or "").lower()
    allowed = session.scalar(
        select(WebhookHost).where(tenant_clause(firing.organization_id, WebhookHost), WebhookHost.host == host)
    )
    if allowed is None:
        raise PermissionError(f"{host} is not an allowed webhook host")
    decision = session.get(Decision, firing.decision_id)
    body = orjson.dumps(
        {
            "delivery_id": delivery_id,
            "rule_id": firing.rule_id,
            "rule": firing.rule_name,
            "decision_id": firing.decision_id,
            "record_type": firing.record_type,
            "record_id": firing.record_id,
            "event_type": decision.event_type if decision else None,
            "why": {"zh": firing.why_zh, "en": firing.why_en},
        }
    )
    response = httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Closeloop-Signature": signature(allowed.secret, body),
            "X-Closeloop-Delivery": str(delivery_id),
        },
        timeout=WEBHOOK_TIMEOUT,
        follow_redirects=False,
    )
    response.raise_for_status()
    return {"status_code": response.status_code}
