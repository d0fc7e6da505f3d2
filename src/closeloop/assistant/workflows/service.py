"""Assistant workflows configured, not coded (AST-6).

A workflow is data per organization: an outbox event type (``activity.created``,
``opportunity.created``, ``ticket.created``…), conditions on the event's record and its account
(``{"field": "account.industry", "op": "eq", "value": "hospital"}``), what to compose (today the
account's visit brief: retrieval, the compliance pass and the grounded composition of
:mod:`closeloop.assistant.briefs`) and how to deliver it (a notification and / or a task for the
record's owner). Lead events (``lead.created``, ``lead.assigned``) compose a lead brief
(:func:`closeloop.assistant.briefs.lead_brief`) for the rep the lead is assigned to; an unassigned
lead is skipped until its assignment wakes the workflow again.

How it runs: the automation engine drains the outbox once; it calls the hooks registered with
:func:`closeloop.automation.engine.on_event`, and the worker's hook (:func:`matching`) queues one
task per enabled workflow of that event type after the drain commits — the engine is not
duplicated and a slow composition never holds the drain. The task (:func:`run`) checks the
conditions and composes **as the owner** (``org_service.actor_for`` the owner's user): the brief
holds only the records, fields and collections that owner may see (AST-7). A run is recorded once
per workflow and event.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from closeloop.assistant import briefs
from closeloop.assistant.workflows.models import AssistantWorkflow, AssistantWorkflowRun
from closeloop.automation import metrics
from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from closeloop.crm.tasks.service import NewTask, open_system_tasks
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.events.service import Claimed
from closeloop.governance.permissions import require
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.notifications import Message, notify

log = logging.getLogger("closeloop.assistant.workflows")

MANAGE = "assistant:workflows"
READ = "assistant:report"
#: the events a workflow may wait for: records that belong to an account and have an owner, and
#: leads (created, or assigned to a rep: ``crm.leads.service.assign_lead`` audits and emits it)
ACCOUNT_EVENTS = ("activity.created", "opportunity.created", "ticket.created", "order.created", "contact.created")
LEAD_EVENTS = ("lead.created", "lead.assigned")
EVENTS = ACCOUNT_EVENTS + LEAD_EVENTS
OWNER_FIELDS = ("owner_id", "user_id")
MAX_STATEMENTS = 6


Delivery = Literal["notification", "task"]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=r"^(record|account)\.[a-z_]{1,40}$")
    op: Literal["eq", "ne", "in", "contains"] = "eq"
    value: str | list[str]


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    compose: Literal["account_brief", "lead_brief"] = "account_brief"
    passages: int = Field(default=3, ge=0, le=10)
    deliver: list[Delivery] = Field(default_factory=lambda: list[Delivery](["notification"]), min_length=1)


#: shipped examples an organization can enable from the page
EXAMPLES: dict[str, dict[str, Any]] = {
    "hospital_inquiry_brief": {
        "name": "医院询盘 → 拜访简报",
        "event_type": "activity.created",
        "definition": {
            "conditions": [
                {"field": "record.direction", "op": "eq", "value": "inbound"},
                {"field": "account.industry", "op": "eq", "value": "hospital"},
            ],
            "compose": "account_brief",
            "passages": 3,
            "deliver": ["notification", "task"],
        },
    },
    "lead_assigned_brief": {
        "name": "新线索 → 线索简报",
        "event_type": "lead.assigned",
        "definition": {"conditions": [], "compose": "lead_brief", "passages": 2, "deliver": ["notification"]},
    },
}


def _definition(raw: Any) -> Definition:
    try:
        return Definition.model_validate(raw)
    except ValidationError as error:
        problems = [FieldProblem("definition." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in error.errors()]
        raise ValidationFailed(problems) from error


def list_workflows(session: Session, actor: Actor) -> list[AssistantWorkflow]:
    require(actor, READ)
    return list(
        session.scalars(
            select(AssistantWorkflow)
            .where(tenant_clause(actor.organization_id, AssistantWorkflow))
            .order_by(AssistantWorkflow.name, AssistantWorkflow.id)
        )
    )


def get_workflow(session: Session, actor: Actor, workflow_id: int) -> AssistantWorkflow:
    require(actor, READ)
    found = session.scalar(
        select(AssistantWorkflow)
        .where(tenant_clause(actor.organization_id, AssistantWorkflow))
        .where(AssistantWorkflow.id == workflow_id)
    )
    if found is None:
        raise NotFound("assistant workflow", workflow_id)
    return found


def create_workflow(
    session: Session, actor: Actor, *, name: str, event_type: str, definition: Any, enabled: bool = True
) -> AssistantWorkflow:
    require(actor, MANAGE)
    name = name.strip()
    if not name:
        raise ValidationFailed.one("name", "a workflow needs a name", "required")
    if event_type not in EVENTS:
        raise ValidationFailed.one("event_type", f"event_type must be one of {', '.join(EVENTS)}")
    checked = _definition(definition)
    if (checked.compose == "lead_brief") != (event_type in LEAD_EVENTS):
        raise ValidationFailed.one(
            "definition.compose",
            "lead events compose a lead_brief; the other events compose an account_brief",
            "compose_mismatch",
        )
    workflow = AssistantWorkflow(
        organization_id=actor.organization_id,
        name=name[:120],
        event_type=event_type,
        definition=checked.model_dump(),
        enabled=enabled,
    )
    session.add(workflow)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"A workflow named {name!r} exists already", field_name="name") from error
    audit.record(
        session,
        actor,
        "assistant_workflow.created",
        subject_type="assistant_workflow",
        subject_id=workflow.id,
        changes=audit.diff({}, {"name": workflow.name, "event_type": event_type, "enabled": enabled}),
    )
    return workflow


def set_enabled(session: Session, actor: Actor, workflow_id: int, enabled: bool) -> AssistantWorkflow:
    require(actor, MANAGE)
    workflow = get_workflow(session, actor, workflow_id)
    if workflow.enabled != enabled:
        audit.record(
            session,
            actor,
            "assistant_workflow.updated",
            subject_type="assistant_workflow",
            subject_id=workflow.id,
            changes=audit.diff({"enabled": workflow.enabled}, {"enabled": enabled}),
        )
        workflow.enabled = enabled
        session.flush()
    return workflow


def workflow_body(workflow: AssistantWorkflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "name": workflow.name,
        "event_type": workflow.event_type,
        "definition": workflow.definition,
        "enabled": workflow.enabled,
        "created_at": workflow.created_at.isoformat(),
    }


def recent_runs(session: Session, actor: Actor, *, limit: int = 20) -> list[AssistantWorkflowRun]:
    require(actor, READ)
    return list(
        session.scalars(
            select(AssistantWorkflowRun)
            .where(tenant_clause(actor.organization_id, AssistantWorkflowRun))
            .order_by(AssistantWorkflowRun.id.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------- running


def matching(session: Session, event: Claimed) -> list[int]:
    """The enabled workflows ``event`` wakes (the engine's hook; cheap: one indexed query)."""
    if event.event_type not in EVENTS or event.actor_kind == "rule":
        return []
    return list(
        session.scalars(
            select(AssistantWorkflow.id)
            .where(tenant_clause(event.organization_id, AssistantWorkflow))
            .where(AssistantWorkflow.event_type == event.event_type, AssistantWorkflow.enabled.is_(True))
            .order_by(AssistantWorkflow.id)
        )
    )


def _value(record: Any, account: Any, field: str) -> Any:
    scope, name = field.split(".", 1)
    source = record if scope == "record" else account
    return None if source is None else getattr(source, name, None)


def _holds(condition: Condition, value: Any) -> bool:
    have = "" if value is None else str(getattr(value, "value", value)).lower()
    wanted = [v.lower() for v in condition.value] if isinstance(condition.value, list) else [condition.value.lower()]
    if condition.op == "eq":
        return have == wanted[0]
    if condition.op == "ne":
        return have != wanted[0]
    if condition.op == "in":
        return have in wanted
    return any(w in have for w in wanted)


def run(
    database: Database, organization_id: int, workflow_id: int, *, event_id: int, subject_type: str, subject_id: int
) -> str:
    """One workflow for one event: check, compose as the owner, deliver; returns the run's status."""
    with database.unit_of_work(None, system=True) as session:
        workflow = session.scalar(
            select(AssistantWorkflow)
            .where(tenant_clause(organization_id, AssistantWorkflow))
            .where(AssistantWorkflow.id == workflow_id)
        )
        if workflow is None or not workflow.enabled:
            return "skipped"
        done = session.scalar(
            select(AssistantWorkflowRun.status).where(
                AssistantWorkflowRun.workflow_id == workflow_id, AssistantWorkflowRun.event_id == event_id
            )
        )
        if done is not None:
            return str(done)
        definition = Definition.model_validate(workflow.definition)
        status, detail, owner_id = _run(session, organization_id, workflow, definition, subject_type, subject_id)
        session.add(
            AssistantWorkflowRun(
                organization_id=organization_id,
                workflow_id=workflow_id,
                event_id=event_id,
                subject_type=subject_type,
                subject_id=subject_id,
                owner_id=owner_id,
                status=status,
                detail=detail[:2000],
            )
        )
        return status


def _run(
    session: Session,
    organization_id: int,
    workflow: AssistantWorkflow,
    definition: Definition,
    subject_type: str,
    subject_id: int,
) -> tuple[str, str, int | None]:
    model = metrics.MODELS.get(subject_type)
    record = (
        session.scalar(select(model).where(tenant_clause(organization_id, model), model.id == subject_id))
        if model is not None
        else None
    )
    if record is None:
        return "skipped", "the record is gone", None
    account_id = record.id if subject_type == "account" else getattr(record, "account_id", None)
    account_model = metrics.MODELS["account"]
    account = (
        session.scalar(
            select(account_model).where(tenant_clause(organization_id, account_model), account_model.id == account_id)
        )
        if account_id
        else None
    )
    for condition in definition.conditions:
        if not _holds(condition, _value(record, account, condition.field)):
            return "skipped", f"{condition.field} {condition.op} {condition.value}: not met", None
    if subject_type == "lead":
        return _run_lead(session, organization_id, workflow, definition, record)
    owner_id = next((getattr(record, f) for f in OWNER_FIELDS if getattr(record, f, None)), None)
    if owner_id is None and account is not None:
        owner_id = getattr(account, "owner_id", None)
    owner = session.get(User, owner_id) if owner_id else None
    if owner is None or owner.organization_id != organization_id or account is None:
        return "skipped", "no owner or no account to brief", None
    # compose as the owner: their row scope, field masks and collections (AST-7)
    reader = org_service.actor_for(session, owner)
    try:
        brief = briefs.account_brief(session, reader, account.id, passages=definition.passages)
    except NotFound:
        return "skipped", "the owner may not see the account", owner.id
    lines = [s.text for key in briefs.SECTIONS for s in brief.sections.get(key, [])][:MAX_STATEMENTS]
    body = "\n".join(f"• {line}" for line in lines)
    link = f"/accounts/{account.id}/brief"
    _deliver(
        session,
        organization_id,
        workflow,
        definition,
        owner,
        titles=(f"{workflow.name}：{brief.title} 的拜访简报", f"{workflow.name}: visit brief for {brief.title}"),
        task_title=f"{brief.title}：阅读拜访简报 / read the visit brief",
        subject=("account", account.id),
        link=link,
        body=body,
    )
    return "delivered", body, owner.id


def _deliver(
    session: Session,
    organization_id: int,
    workflow: AssistantWorkflow,
    definition: Definition,
    owner: User,
    *,
    titles: tuple[str, str],
    task_title: str,
    subject: tuple[str, int],
    link: str,
    body: str,
) -> None:
    if "notification" in definition.deliver:
        notify(
            session,
            organization_id=organization_id,
            user_id=owner.id,
            message=Message(
                kind="assistant_brief",
                title_zh=titles[0],
                title_en=titles[1],
                body_zh=body,
                body_en=body,
                link=link,
            ),
        )
    if "task" in definition.deliver:
        system = org_service.system_actor(organization_id, label=f"assistant workflow {workflow.id}")
        open_system_tasks(
            session,
            system,
            [
                NewTask(
                    title=task_title,
                    owner_id=owner.id,
                    subject_type=subject[0],
                    subject_id=subject[1],
                    link=link,
                    source=f"assistant_workflow:{workflow.id}",
                    description=body,
                )
            ],
        )


def _run_lead(
    session: Session, organization_id: int, workflow: AssistantWorkflow, definition: Definition, lead: Any
) -> tuple[str, str, int | None]:
    """A lead's brief for the rep it is assigned to; an unassigned lead waits (its assignment is
    another event, which runs the workflow again)."""
    owner = session.get(User, lead.owner_id) if lead.owner_id else None
    if owner is None or owner.organization_id != organization_id:
        return "skipped", "the lead is not assigned to a rep", None
    reader = org_service.actor_for(session, owner)
    try:
        brief = briefs.lead_brief(session, reader, lead.id, passages=definition.passages)
    except NotFound:
        return "skipped", "the rep may not see the lead", owner.id
    # the suggested next step always comes last, after at most MAX_STATEMENTS of what it rests on
    facts = [s.text for key in briefs.LEAD_SECTIONS[:-1] for s in brief.sections.get(key, [])][:MAX_STATEMENTS]
    lines = facts + [s.text for s in brief.sections.get("next_step", [])]
    body = "\n".join(f"• {line}" for line in lines)
    _deliver(
        session,
        organization_id,
        workflow,
        definition,
        owner,
        titles=(f"{workflow.name}：{brief.title} 的线索简报", f"{workflow.name}: lead brief for {brief.title}"),
        task_title=f"{brief.title}：阅读线索简报 / read the lead brief",
        subject=("lead", lead.id),
        link=f"/leads/{lead.id}",
        body=body,
    )
    return "delivered", body, owner.id
