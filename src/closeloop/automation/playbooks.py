"""Playbooks (AUTO-3): follow-up strategies as data that branch on industry, company size and
purchase cycle. A rule's ``apply_playbook`` action assigns one to an opportunity (``auto`` picks
the first whose ``match`` fits); the first step becomes a task for the owner, and each step's task
marked done opens the next — processed from the outbox like any event, so exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.automation.models import Playbook, PlaybookRun
from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.tasks.models import Task
from closeloop.crm.tasks.service import NewTask, open_system_tasks
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.events.service import Claimed
from closeloop.governance.permissions import require

#: a purchase cycle longer than this is "long" (committee decisions, tenders)
LONG_CYCLE_DAYS = 90

TEMPLATES: dict[str, dict[str, Any]] = {
    "医院设备·长周期": {
        "match": {"industries": ["医疗", "医院", "医疗器械", "hospital", "healthcare"], "cycle": "long"},
        "steps": [
            {"title": "拜访设备科与使用科室", "due_in_days": 3},
            {"title": "需求调研与论证材料", "due_in_days": 14},
            {"title": "产品演示 / 现场试用", "due_in_days": 21},
            {"title": "院内论证会（采购委员会）", "due_in_days": 30},
            {"title": "招标文件与参数确认", "due_in_days": 30},
            {"title": "投标", "due_in_days": 21},
            {"title": "合同谈判与签约", "due_in_days": 14},
        ],
    },
    "SMB SaaS · short cycle": {
        "match": {"sizes": ["micro", "small"], "cycle": "short"},
        "steps": [
            {"title": "Open a trial account", "due_in_days": 1},
            {"title": "Day-3 trial check-in call", "due_in_days": 3},
            {"title": "Trial review and quote", "due_in_days": 7},
            {"title": "Close", "due_in_days": 7},
        ],
    },
}


def check(match: Any, steps: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(match, Mapping) or match.get("cycle") not in (None, "long", "short"):
        raise ValidationFailed.one("match.cycle", "must be long, short or absent")
    if not isinstance(steps, list) or not steps:
        raise ValidationFailed.one("steps", "a playbook needs at least one step")
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or not str(step.get("title") or "").strip():
            raise ValidationFailed.one(f"steps.{index}.title", "each step needs a title", "required")
        if not isinstance(step.get("due_in_days", 0), int) or not 0 <= step.get("due_in_days", 0) <= 365:
            raise ValidationFailed.one(f"steps.{index}.due_in_days", "must be a whole number of days, 0 to 365")
    return dict(match), [dict(step) for step in steps]


def create(session: Session, actor: Actor, *, name: str, match: Any, steps: Any) -> Playbook:
    require(actor, "rules:write")
    checked_match, checked_steps = check(match, steps)
    if not name.strip():
        raise ValidationFailed.one("name", "may not be empty", "required")
    exists = session.scalar(
        select(Playbook.id).where(tenant_clause(actor.organization_id, Playbook), Playbook.name == name.strip())
    )
    if exists is not None:
        raise Conflict(f"a playbook named {name.strip()} exists", field_name="name")
    playbook = Playbook(
        organization_id=actor.organization_id, name=name.strip()[:120], match=checked_match, steps=checked_steps
    )
    session.add(playbook)
    session.flush()
    audit.record(
        session, actor, "playbook.created", subject_type="playbook", subject_id=playbook.id,
        changes={"name": [None, playbook.name], "steps": [None, checked_steps]},
    )  # fmt: skip
    return playbook


def install_templates(session: Session, actor: Actor) -> list[Playbook]:
    """Add the built-in playbooks the organization does not have yet."""
    require(actor, "rules:write")
    have = set(session.scalars(select(Playbook.name).where(tenant_clause(actor.organization_id, Playbook))))
    return [
        create(session, actor, name=name, match=template["match"], steps=template["steps"])
        for name, template in TEMPLATES.items()
        if name not in have
    ]


def listing(session: Session, actor: Actor) -> list[Playbook]:
    require(actor, "rules:read")
    return list(
        session.scalars(select(Playbook).where(tenant_clause(actor.organization_id, Playbook)).order_by(Playbook.id))
    )


def cycle_of(opportunity: Opportunity, account: Account | None) -> str:
    """Long or short: the expected cycle from opening to the expected close, else the company's size."""
    if opportunity.expected_close_date is not None:
        days = (opportunity.expected_close_date - opportunity.opened_at.date()).days
        return "long" if days > LONG_CYCLE_DAYS else "short"
    size = account.size if account is not None else None
    return "long" if size in ("large", "enterprise") else "short"


def fits(playbook: Playbook, opportunity: Opportunity, account: Account | None) -> bool:
    match = playbook.match
    industries = {str(i).lower() for i in match.get("industries") or []}
    if industries and (account is None or str(account.industry or "").lower() not in industries):
        return False
    sizes = set(match.get("sizes") or [])
    if sizes and (account is None or account.size not in sizes):
        return False
    return not match.get("cycle") or match["cycle"] == cycle_of(opportunity, account)


def apply(session: Session, actor: Actor, opportunity_id: int, target: str, now: datetime, link: str) -> dict[str, Any]:
    """Start a playbook on an opportunity (``auto``: the first that fits); its first step becomes a task."""
    org = actor.organization_id
    opportunity = session.scalar(
        select(Opportunity).where(tenant_clause(org, Opportunity), Opportunity.id == opportunity_id)
    )
    if opportunity is None:
        raise ValueError(f"opportunity {opportunity_id} not found")
    running = session.scalar(
        select(PlaybookRun.id).where(
            tenant_clause(org, PlaybookRun),
            PlaybookRun.opportunity_id == opportunity_id,
            PlaybookRun.status == "active",
        )
    )
    if running is not None:
        return {"playbook_run_id": running, "already_running": True}
    account = (
        session.scalar(select(Account).where(tenant_clause(org, Account), Account.id == opportunity.account_id))
        if opportunity.account_id is not None
        else None
    )
    candidates = listing(session, actor)
    if target.startswith("playbook:"):
        chosen = next((p for p in candidates if str(p.id) == target[9:] or p.name == target[9:]), None)
    else:
        chosen = next((p for p in candidates if fits(p, opportunity, account)), None)
    if chosen is None:
        return {"playbook": None, "reason": "no playbook fits this opportunity"}
    run = PlaybookRun(
        organization_id=org, playbook_id=chosen.id, opportunity_id=opportunity_id, step=0, status="active"
    )
    session.add(run)
    session.flush()
    run.task_id = _open_step(session, actor, run, chosen, opportunity, now, link)
    return {"playbook": chosen.name, "playbook_run_id": run.id, "task_id": run.task_id}


def _open_step(
    session: Session,
    actor: Actor,
    run: PlaybookRun,
    playbook: Playbook,
    opportunity: Opportunity,
    now: datetime,
    link: str,
) -> int:
    step = playbook.steps[run.step]
    [task_id] = open_system_tasks(
        session,
        actor,
        [
            NewTask(
                title=str(step["title"])[:200],
                owner_id=opportunity.owner_id,
                subject_type="opportunity",
                subject_id=opportunity.id,
                link=link,
                source=f"playbook:{run.id}:{run.step}",
                description=f"{playbook.name} · {run.step + 1}/{len(playbook.steps)}",
                due_on=(now + timedelta(days=int(step.get("due_in_days") or 0))).date(),
            )
        ],
    )
    return task_id


def advance(session: Session, actor: Actor, event: Claimed, now: datetime) -> int | None:
    """A playbook task marked done opens the next step's task; returns its id (or None)."""
    change = (event.payload.get("changes") or {}).get("status")
    if not (isinstance(change, list) and len(change) == 2 and change[1] == "done") or event.subject_id is None:
        return None
    org = event.organization_id
    task = session.scalar(select(Task).where(tenant_clause(org, Task), Task.id == event.subject_id))
    if task is None or not (task.source or "").startswith("playbook:"):
        return None
    run = session.scalar(select(PlaybookRun).where(tenant_clause(org, PlaybookRun), PlaybookRun.task_id == task.id))
    if run is None or run.status != "active":
        return None
    playbook = session.get(Playbook, run.playbook_id)
    opportunity = session.scalar(
        select(Opportunity).where(tenant_clause(org, Opportunity), Opportunity.id == run.opportunity_id)
    )
    if playbook is None or opportunity is None:
        return None
    run.step += 1
    if run.step >= len(playbook.steps):
        run.status, run.task_id = "done", None
        return None
    run.task_id = _open_step(session, actor, run, playbook, opportunity, now, task.link or "")
    return run.task_id
