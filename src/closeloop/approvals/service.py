"""Approvals as people use them: submit, approve, reject, add an approver (加签), withdraw and
resubmit; the inbox (to approve / submitted / CC'd) and one approval's detail.

Every action writes the approval's timeline and the audit trail (``approval.submitted``,
``approval.approved`` …, which the automation engine consumes from the outbox) and tells the
people concerned in the app. Every decision bumps the approval's ``version``: two approvers acting
at once cannot both advance it — the second gets a conflict and nothing of theirs is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from closeloop.approvals import builtins, flows, subjects
from closeloop.approvals import names as builtin_names
from closeloop.approvals.models import (
    Approval,
    ApprovalEvent,
    ApprovalFlow,
    ApprovalStatus,
    ApprovalTask,
    MissingApprover,
    TaskStatus,
)
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, DomainError, FieldProblem, Forbidden, NotFound, ValidationFailed
from closeloop.core.pagination import Cursor
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org.models import User
from closeloop.org.notifications import Message, notify

BOXES = ("to_approve", "submitted", "cc", "all")
_OPEN = (TaskStatus.WAITING, TaskStatus.PENDING)


# --- resolving approvers -----------------------------------------------------------------------------


def _active(session: Session, organization_id: int, ids: Sequence[int]) -> list[int]:
    if not ids:
        return []
    found = set(
        session.scalars(
            select(User.id).where(
                tenant_clause(organization_id, User), User.id.in_(list(ids)), User.is_active.is_(True)
            )
        )
    )
    return [i for i in dict.fromkeys(ids) if i in found]


def _supervisors(session: Session, organization_id: int, submitter: User | None, levels: int) -> list[int]:
    chain: list[int] = []
    current = submitter
    while current is not None and current.manager_id is not None and len(chain) < levels:
        if current.manager_id in chain:
            break
        chain.append(current.manager_id)
        current = session.scalar(
            select(User).where(tenant_clause(organization_id, User), User.id == current.manager_id)
        )
    return chain


def _role_holders(
    session: Session, organization_id: int, role: str, within: str | None, submitter: User | None
) -> list[int]:
    base = select(User).where(tenant_clause(organization_id, User), User.role == role, User.is_active.is_(True))
    if within == "region":
        if submitter is None or submitter.region_id is None:
            return []
        base = base.where(User.region_id == submitter.region_id)
    elif within == "department":
        line = flows.department_line(session, organization_id, submitter.department_id if submitter else None)
        holders = list(session.scalars(base.where(User.department_id.in_(line or [0])).order_by(User.id)))
        for department_id in line:  # the nearest department that has a holder
            nearest = [u.id for u in holders if u.department_id == department_id]
            if nearest:
                return nearest
        return []
    return list(session.scalars(base.with_only_columns(User.id).order_by(User.id)))


def resolve(
    session: Session,
    organization_id: int,
    spec: Mapping[str, Any],
    submitter: User | None,
    chosen: Sequence[int] = (),
) -> list[int]:
    """The active users an approver spec names, in order."""
    kind = spec["kind"]
    if kind == "supervisor":
        ids = _supervisors(session, organization_id, submitter, 1)
    elif kind == "supervisors":
        ids = _supervisors(session, organization_id, submitter, int(spec["levels"]))
    elif kind == "role":
        ids = _role_holders(session, organization_id, spec["role"], spec.get("within"), submitter)
    elif kind == "users":
        ids = list(spec["user_ids"])
    else:
        ids = list(chosen)
    return _active(session, organization_id, ids)


@dataclass
class _Step:
    position: int
    name: str
    mode: str
    approvers: list[int]
    note: str | None = None
    #: a built-in step's key (its name in the reader's language), see :mod:`closeloop.approvals.names`
    key: str | None = None


def _route(
    session: Session,
    flow: ApprovalFlow,
    branch: Mapping[str, Any],
    submitter: User | None,
    chosen: Mapping[str, Sequence[int]],
) -> list[_Step]:
    """Each step with its approvers, after the flow's rules for the submitter and for nobody to approve."""
    organization_id = flow.organization_id
    steps: list[_Step] = []
    problems: list[FieldProblem] = []
    for position, step in enumerate(branch["steps"]):
        approvers: list[int] = []
        for spec in step["approvers"]:
            if spec["kind"] == "chosen":
                picked = chosen.get(str(position)) or []
                valid = _active(session, organization_id, picked)
                if not picked or len(valid) != len(list(dict.fromkeys(picked))):
                    problems.append(
                        FieldProblem(f"chosen_approvers.{position}", "choose the approvers of this step", "required")
                    )
                approvers.extend(valid)
            else:
                approvers.extend(resolve(session, organization_id, spec, submitter))
        approvers = list(dict.fromkeys(approvers))
        note = None
        if submitter is not None and flow.skip_submitter and submitter.id in approvers:
            approvers.remove(submitter.id)
            note = "submitter_skipped" if not approvers else None
        elif not approvers:
            named = builtin_names.shown(step["name"], step.get("key"), "en")  # the problem is said in English
            if flow.missing_approver == MissingApprover.REFUSE:
                problems.append(FieldProblem(f"steps.{position}", f"nobody can approve step '{named}'", "no_approver"))
            elif flow.missing_approver == MissingApprover.ADMIN:
                approvers = _role_holders(session, organization_id, flow.fallback_role, None, None)
                note = "fallback_role"
                if not approvers:
                    problems.append(
                        FieldProblem(f"steps.{position}", f"nobody can approve step '{named}'", "no_approver")
                    )
            else:
                note = "no_approver_skipped"
        steps.append(_Step(position, step["name"], step["mode"], approvers, note, step.get("key")))
    if problems:
        raise ValidationFailed(problems, message="The approval cannot be submitted")
    return steps


def _cc(session: Session, organization_id: int, branch: Mapping[str, Any], submitter: User | None) -> list[int]:
    ids: list[int] = []
    for spec in branch.get("cc") or []:
        ids.extend(resolve(session, organization_id, spec, submitter))
    return [i for i in dict.fromkeys(ids) if submitter is None or i != submitter.id]


# --- the timeline, the trail, the notices ------------------------------------------------------------


def _event(
    session: Session,
    actor: Actor,
    approval: Approval,
    action: str,
    *,
    step: int | None = None,
    comment: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        ApprovalEvent(
            organization_id=approval.organization_id,
            approval_id=approval.id,
            action=action,
            actor_id=actor.user_id,
            actor_label=actor.label[:200],
            step=step,
            comment=comment,
            data=dict(data or {}),
            occurred_at=utcnow(),
        )
    )
    changes: dict[str, list[Any]] = {"status": [None, approval.status]}
    if step is not None:
        changes["step"] = [None, step]
    if comment:
        changes["comment"] = [None, comment]
    for key, value in (data or {}).items():
        changes[key] = [None, audit.json_safe(value)]
    audit.record(
        session, actor, f"approval.{action}", subject_type="approval", subject_id=approval.id, changes=changes,
        organization_id=approval.organization_id,
    )  # fmt: skip


_NOTICES = {
    "task": ("待您审批:{title}", "Waiting for your approval: {title}"),
    "cc": ("抄送给您:{title}", "For your information: {title}"),
    "approved": ("审批已通过:{title}", "Approved: {title}"),
    "rejected": ("审批被驳回:{title}", "Rejected: {title}"),
    "withdrawn": ("审批已撤回:{title}", "Withdrawn: {title}"),
}


def title_in(approval: Approval, locale: str) -> str:
    """The approval's title for a reader of ``locale`` (an expense claim names its kind in their
    language); otherwise the title stored at submission."""
    subject = subjects.get(approval.record_type)
    if subject is not None and subject.titled is not None and approval.snapshot:
        return subject.titled(approval.snapshot, locale)[:300]
    return approval.title


def _tell(session: Session, approval: Approval, user_ids: Sequence[int], notice: str, body: str | None = None) -> None:
    zh, en = _NOTICES[notice]
    for user_id in dict.fromkeys(user_ids):
        notify(
            session,
            organization_id=approval.organization_id,
            user_id=user_id,
            message=Message(
                f"approval.{notice}",
                zh.format(title=title_in(approval, "zh_CN")),
                en.format(title=title_in(approval, "en")),
                body,
                body,
                f"/approvals/{approval.id}",
            ),
        )


# --- submitting --------------------------------------------------------------------------------------


def _tasks(session: Session, approval: Approval) -> list[ApprovalTask]:
    return list(
        session.scalars(
            select(ApprovalTask)
            .where(tenant_clause(approval.organization_id, ApprovalTask), ApprovalTask.approval_id == approval.id)
            .order_by(ApprovalTask.step, ApprovalTask.sequence, ApprovalTask.id)
        )
    )


def _open_step(session: Session, actor: Actor, approval: Approval, tasks: list[ApprovalTask], start: int) -> None:
    """Make the first step from ``start`` that has approvers current; none left: the approval is approved."""
    for position in range(start, len(approval.route)):
        step_tasks = [t for t in tasks if t.step == position and t.status != TaskStatus.CC]
        if not step_tasks:
            continue
        approval.current_step = position
        mode = approval.route[position]["mode"]
        starting = step_tasks[:1] if mode == "sequence" else step_tasks
        for task in starting:
            task.status = TaskStatus.PENDING
        _tell(session, approval, [t.approver_id for t in starting], "task")
        return
    _finish(session, actor, approval, approved=True)


def _finish(session: Session, actor: Actor, approval: Approval, *, approved: bool, comment: str | None = None) -> None:
    approval.status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
    approval.current_step = None
    approval.decided_at = utcnow()
    for task in _tasks(session, approval):
        if task.status in _OPEN:
            task.status = TaskStatus.CANCELLED
    _event(session, actor, approval, "decided", data={"outcome": approval.status})
    subject = builtins.subject_for(approval.record_type)
    if subject is not None and subject.on_decided is not None:
        subject.on_decided(session, approval, approved)
    if approval.submitter_id is not None:
        _tell(session, approval, [approval.submitter_id], "approved" if approved else "rejected", comment)


def _new_approval(
    session: Session,
    actor: Actor,
    *,
    record_type: str,
    record_id: int | None,
    details: Mapping[str, Any],
    chosen: Mapping[str, Sequence[int]],
    comment: str | None,
    previous: Approval | None,
) -> Approval:
    require(actor, "approvals:use")
    subject = builtins.subject_for(record_type)
    if subject is None or subjects.get(record_type) is None:
        raise ValidationFailed.one("record_type", f"{record_type} cannot be submitted for approval here")
    if subject.needs_record and record_id is None:
        raise ValidationFailed.one("record_id", "give the record to approve", "required")
    if not subject.needs_record:
        record_id = None
    loaded = subject.load(session, actor, record_id, details)
    if record_id is not None:
        waiting = session.scalar(
            select(Approval.id).where(
                tenant_clause(actor.organization_id, Approval),
                Approval.record_type == record_type,
                Approval.record_id == record_id,
                Approval.status == ApprovalStatus.PENDING,
            )
        )
        if waiting is not None:
            raise Conflict(f"approval {waiting} of this record is still pending", code="approval_pending",
                           field_name="record_id")  # fmt: skip
    if subject.admits is not None:
        subject.admits(session, actor, record_id, loaded)
    submitter = session.get(User, actor.user_id) if actor.user_id is not None else None
    flow = flows.flow_for(session, actor.organization_id, record_type, submitter)
    if flow is None:
        raise ValidationFailed.one("record_type", f"no enabled approval flow for {record_type}", "no_flow")
    branch = flows.choose_branch(flow.definition, loaded.fields)
    steps = _route(session, flow, branch, submitter, chosen)
    approval = Approval(
        organization_id=actor.organization_id,
        flow_id=flow.id,
        flow_revision=flow.revision,
        branch=branch["name"],
        record_type=record_type,
        record_id=record_id,
        title=loaded.title[:300],
        submitter_id=actor.user_id,
        submitted_by=actor.label[:200],
        status=ApprovalStatus.PENDING,
        snapshot=audit.json_safe(loaded.fields),
        details=audit.json_safe(dict(details)),
        route=[
            {"position": s.position, "name": s.name, "mode": s.mode, "note": s.note} | ({"key": s.key} if s.key else {})
            for s in steps
        ],
        comment=comment,
        previous_id=previous.id if previous else None,
        round=previous.round + 1 if previous else 1,
    )
    session.add(approval)
    session.flush()
    tasks = _add_route_tasks(session, approval, steps)
    cc = _cc(session, actor.organization_id, branch, submitter)
    for user_id in cc:
        session.add(_task(approval, -1, 0, user_id, TaskStatus.CC))
    _event(session, actor, approval, "submitted", comment=comment,
           data={"record_type": record_type, "record_id": record_id, "branch": branch["name"],
                 "flow_revision": flow.revision, "round": approval.round})  # fmt: skip
    for step in steps:
        if step.note in ("submitter_skipped", "no_approver_skipped"):
            _event(session, actor, approval, "step_skipped", step=step.position, data={"why": step.note})
    _tell(session, approval, cc, "cc")
    session.flush()
    _open_step(session, actor, approval, tasks, 0)
    session.flush()
    return approval


def _task(approval: Approval, step: int, sequence: int, user_id: int, status: str) -> ApprovalTask:
    return ApprovalTask(
        organization_id=approval.organization_id,
        approval_id=approval.id,
        step=step,
        sequence=sequence,
        approver_id=user_id,
        status=status,
        created_at=utcnow(),
    )


def _add_route_tasks(session: Session, approval: Approval, steps: Sequence[_Step]) -> list[ApprovalTask]:
    tasks = [
        _task(approval, step.position, index * 100, user_id, TaskStatus.WAITING)
        for step in steps
        for index, user_id in enumerate(step.approvers)
    ]
    session.add_all(tasks)
    session.flush()
    return tasks


def submit(
    session: Session,
    actor: Actor,
    *,
    record_type: str,
    record_id: int | None,
    details: Mapping[str, Any] | None = None,
    chosen_approvers: Mapping[str, Sequence[int]] | None = None,
    comment: str | None = None,
) -> Approval:
    """Submit a record (that ``actor`` can see) under its enabled flow: snapshot its fields, pick the
    branch, resolve every step's approvers and open the first step. Refused (422) when no flow
    applies or a step has nobody to approve under a "refuse" flow; 409 while an approval of the
    same record is pending."""
    return _new_approval(
        session, actor, record_type=record_type, record_id=record_id, details=details or {},
        chosen=chosen_approvers or {}, comment=comment, previous=None,
    )  # fmt: skip


def request_for_rule(
    session: Session,
    actor: Actor,
    *,
    record_type: str,
    record_id: int,
    role: str,
    decision_id: int,
    why: str,
) -> tuple[Approval, list[int]]:
    """An automation rule's ``require_approval``: one step that any holder of ``role`` decides,
    in the same inbox as every other approval. ``actor`` is the rule (acting with its owner's
    rights); the snapshot is the record as the rule saw it."""
    subject = builtins.subject_for(record_type)
    try:
        loaded = subject.load(session, actor, record_id, {}) if subject is not None else None
    except DomainError:
        loaded = None  # the rule's owner cannot see the record: the approvers open it themselves
    approvers = _role_holders(session, actor.organization_id, role, None, None)
    approval = Approval(
        organization_id=actor.organization_id,
        record_type=record_type,
        record_id=record_id,
        title=(loaded.title if loaded else f"{record_type} {record_id}")[:300],
        submitter_id=None,
        submitted_by=actor.label[:200],
        status=ApprovalStatus.PENDING,
        snapshot=audit.json_safe(loaded.fields) if loaded else {},
        details={"role": role},
        route=[{"position": 0, "name": role, "mode": "any", "note": None, "key": f"role:{role}"}],
        comment=why,
        decision_id=decision_id,
    )
    session.add(approval)
    session.flush()
    tasks = _add_route_tasks(session, approval, [_Step(0, role, "any", approvers)])
    _event(session, actor, approval, "submitted", comment=why,
           data={"record_type": record_type, "record_id": record_id, "decision_id": decision_id})  # fmt: skip
    if not tasks:
        _finish(session, actor, approval, approved=False, comment=f"nobody holds the role {role}")
    else:
        _open_step(session, actor, approval, tasks, 0)
    session.flush()
    return approval, approvers


# --- reading -----------------------------------------------------------------------------------------


def _mine(actor: Actor, *statuses: str) -> Any:
    return exists().where(
        ApprovalTask.approval_id == Approval.id,
        ApprovalTask.approver_id == (actor.user_id or 0),
        ApprovalTask.status.in_(statuses),
    )


def _visible(actor: Actor) -> Select[Approval]:
    statement = select(Approval).where(tenant_clause(actor.organization_id, Approval))
    if actor.can("approvals:manage"):
        return statement
    return statement.where(or_(Approval.submitter_id == (actor.user_id or 0), _mine(actor, *tuple(TaskStatus))))


def get_approval(session: Session, actor: Actor, approval_id: int, *, lock: bool = False) -> Approval:
    """The approval if ``actor`` submitted it, is or was one of its approvers, got a copy, or manages
    approvals; otherwise *not found*."""
    require(actor, "approvals:use")
    statement = _visible(actor).where(Approval.id == approval_id)
    approval = session.scalar(statement.with_for_update() if lock else statement)
    if approval is None:
        raise NotFound("approval", approval_id)
    return approval


def latest_for(session: Session, actor: Actor, record_type: str, record_id: int) -> Approval | None:
    """The newest approval of one record that ``actor`` may open (for the record's page), if any."""
    if not actor.can("approvals:use"):
        return None
    statement = _visible(actor).where(Approval.record_type == record_type, Approval.record_id == record_id)
    return session.scalar(statement.order_by(Approval.id.desc()).limit(1))


def has_flow(session: Session, actor: Actor, record_type: str) -> bool:
    """Whether a submission of ``record_type`` by ``actor`` would find an enabled flow (the record
    pages offer "submit for approval" only then)."""
    if not actor.can("approvals:use"):
        return False
    submitter = session.get(User, actor.user_id) if actor.user_id is not None else None
    return flows.flow_for(session, actor.organization_id, record_type, submitter) is not None


def inbox(
    session: Session,
    actor: Actor,
    *,
    box: str = "to_approve",
    status: str | None = None,
    record_type: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[Approval], str | None]:
    """A page of the actor's approvals, newest first: waiting for them, submitted by them, copied
    to them, or (sales ops) all."""
    require(actor, "approvals:use")
    if box not in BOXES:
        raise ValidationFailed.one("box", f"must be one of {', '.join(BOXES)}")
    statement = _visible(actor)
    if box == "to_approve":
        statement = statement.where(_mine(actor, TaskStatus.PENDING))
    elif box == "submitted":
        statement = statement.where(Approval.submitter_id == (actor.user_id or 0))
    elif box == "cc":
        statement = statement.where(_mine(actor, TaskStatus.CC))
    if status:
        if status not in tuple(ApprovalStatus):
            raise ValidationFailed.one("status", f"must be one of {', '.join(ApprovalStatus)}")
        statement = statement.where(Approval.status == status)
    if record_type:
        statement = statement.where(Approval.record_type == record_type)
    if cursor:
        statement = statement.where(Approval.id < Cursor.decode(cursor, sort="-id").id)
    rows = list(session.scalars(statement.order_by(Approval.id.desc()).limit(limit + 1)))
    following = Cursor("-id", None, rows[limit - 1].id).encode() if len(rows) > limit else None
    return rows[:limit], following


def _names(session: Session, organization_id: int, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.display_name).where(tenant_clause(organization_id, User), User.id.in_(sorted(ids)))
    )
    return {row.id: row.display_name for row in rows}


def summary(approval: Approval, locale: str = "zh_CN") -> dict[str, Any]:
    """One approval for lists, its title in the reader's ``locale``."""
    return {
        "id": approval.id,
        "title": title_in(approval, locale),
        "record_type": approval.record_type,
        "record_id": approval.record_id,
        "status": approval.status,
        "branch": approval.branch,
        "submitter_id": approval.submitter_id,
        "submitted_by": approval.submitted_by,
        "current_step": approval.current_step,
        "round": approval.round,
        "created_at": approval.created_at.isoformat(),
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "version": approval.version,
    }


def detail(session: Session, actor: Actor, approval: Approval) -> dict[str, Any]:
    """Everything the detail page shows: the snapshot, the steps with their approvers, the copies,
    the timeline, the earlier rounds, and what ``actor`` may do now."""
    tasks = _tasks(session, approval)
    events = list(
        session.scalars(
            select(ApprovalEvent)
            .where(tenant_clause(approval.organization_id, ApprovalEvent), ApprovalEvent.approval_id == approval.id)
            .order_by(ApprovalEvent.id)
        )
    )
    ids = {t.approver_id for t in tasks} | {e.actor_id for e in events if e.actor_id} | {approval.submitter_id or 0}
    names = _names(session, approval.organization_id, ids)
    rounds: list[dict[str, Any]] = []
    previous_id = approval.previous_id
    while previous_id is not None and len(rounds) < 50:
        earlier = session.scalar(
            select(Approval).where(tenant_clause(approval.organization_id, Approval), Approval.id == previous_id)
        )
        if earlier is None:
            break
        rounds.append({"id": earlier.id, "round": earlier.round, "status": earlier.status})
        previous_id = earlier.previous_id

    def task_body(task: ApprovalTask) -> dict[str, Any]:
        return {
            "id": task.id,
            "approver_id": task.approver_id,
            "approver": names.get(task.approver_id),
            "status": task.status,
            "sequence": task.sequence,
            "waits_for_id": task.waits_for_id,
            "added_by_id": task.added_by_id,
            "comment": task.comment,
            "decided_at": task.decided_at.isoformat() if task.decided_at else None,
        }

    mine = _my_task(tasks, actor)
    subject = builtins.subject_for(approval.record_type)
    flow = (
        session.scalar(
            select(ApprovalFlow).where(
                tenant_clause(approval.organization_id, ApprovalFlow), ApprovalFlow.id == approval.flow_id
            )
        )
        if approval.flow_id is not None
        else None
    )
    return {
        **summary(approval, actor.locale),
        "branch_label": builtin_names.branch_label(flow.definition if flow else None, approval.branch, actor.locale),
        "submitter": names.get(approval.submitter_id or 0),
        "flow_id": approval.flow_id,
        "flow_revision": approval.flow_revision,
        "comment": approval.comment,
        "snapshot": approval.snapshot,
        "details": approval.details,
        "link": subject.link(approval.record_id) if subject else None,
        "steps": [
            {
                **step,
                "label": builtin_names.shown(step["name"], step.get("key"), actor.locale),
                "tasks": [task_body(t) for t in tasks if t.step == step["position"]],
            }
            for step in approval.route
        ],
        "cc": [
            {"user_id": t.approver_id, "name": names.get(t.approver_id)} for t in tasks if t.status == TaskStatus.CC
        ],
        "timeline": [
            {
                "action": e.action,
                "actor_id": e.actor_id,
                "actor": names.get(e.actor_id or 0) or e.actor_label,
                "step": e.step,
                "comment": e.comment,
                "data": e.data,
                "occurred_at": e.occurred_at.isoformat(),
            }
            for e in events
        ],
        "previous_rounds": rounds,
        "can": {
            "approve": mine is not None,
            "reject": mine is not None,
            "add_approver": mine is not None,
            "withdraw": approval.status == ApprovalStatus.PENDING and _is_submitter(actor, approval),
            "resubmit": approval.status in (ApprovalStatus.REJECTED, ApprovalStatus.WITHDRAWN)
            and _is_submitter(actor, approval),
        },
    }


# --- deciding ----------------------------------------------------------------------------------------


def _is_submitter(actor: Actor, approval: Approval) -> bool:
    return actor.user_id is not None and approval.submitter_id == actor.user_id


def _my_task(tasks: Sequence[ApprovalTask], actor: Actor) -> ApprovalTask | None:
    return next((t for t in tasks if t.approver_id == actor.user_id and t.status == TaskStatus.PENDING), None)


def _acting(session: Session, actor: Actor, approval_id: int) -> tuple[Approval, list[ApprovalTask], ApprovalTask]:
    approval = get_approval(session, actor, approval_id, lock=True)
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"the approval is already {approval.status}", code="not_pending")
    tasks = _tasks(session, approval)
    mine = _my_task(tasks, actor)
    if mine is None:
        if actor.user_id is not None and any(t.approver_id == actor.user_id for t in tasks):
            raise Conflict("nothing of this approval is waiting for you now", code="not_your_turn")
        raise Forbidden("you are not an approver of this approval")
    return approval, tasks, mine


def _save(session: Session, approval: Approval) -> None:
    """Bump the approval's version: a concurrent decision on it fails instead of advancing it twice."""
    approval.updated_at = utcnow()
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(
            "someone else acted on this approval at the same time; reload it", code="approval_changed"
        ) from None


def approve(session: Session, actor: Actor, approval_id: int, *, comment: str | None = None) -> Approval:
    """Approve the actor's waiting task; the step, then the approval, advance as their mode says."""
    approval, tasks, mine = _acting(session, actor, approval_id)
    mine.status, mine.decided_at, mine.comment = TaskStatus.APPROVED, utcnow(), comment
    _event(session, actor, approval, "approved", step=mine.step, comment=comment)
    _advance(session, actor, approval, tasks, mine)
    _save(session, approval)
    return approval


def _advance(session: Session, actor: Actor, approval: Approval, tasks: list[ApprovalTask], done: ApprovalTask) -> None:
    followers = [t for t in tasks if t.waits_for_id == done.id and t.status == TaskStatus.WAITING]
    if followers:  # someone added after this approver (加签) decides next
        for task in followers:
            task.status = TaskStatus.PENDING
        _tell(session, approval, [t.approver_id for t in followers], "task")
        return
    step = [t for t in tasks if t.step == done.step and t.status != TaskStatus.CC]
    mode = approval.route[done.step]["mode"]
    if mode == "any":
        for task in step:
            if task.status in _OPEN:
                task.status = TaskStatus.CANCELLED
    elif any(t.status == TaskStatus.PENDING for t in step):
        return
    else:
        following = [t for t in step if t.status == TaskStatus.WAITING and t.waits_for_id is None]
        if following:
            following[0].status = TaskStatus.PENDING
            _tell(session, approval, [following[0].approver_id], "task")
            return
    _open_step(session, actor, approval, tasks, done.step + 1)


def reject(session: Session, actor: Actor, approval_id: int, *, reason: str) -> Approval:
    """Reject (a reason is required): the approval ends rejected; the submitter may resubmit."""
    if not reason or not reason.strip():
        raise ValidationFailed.one("reason", "say why you reject it", "required")
    approval, _, mine = _acting(session, actor, approval_id)
    mine.status, mine.decided_at, mine.comment = TaskStatus.REJECTED, utcnow(), reason
    _event(session, actor, approval, "rejected", step=mine.step, comment=reason)
    _finish(session, actor, approval, approved=False, comment=reason)
    _save(session, approval)
    return approval


def add_approver(
    session: Session, actor: Actor, approval_id: int, *, user_id: int, position: str, comment: str | None = None
) -> Approval:
    """加签: ask ``user_id`` to approve before the actor (the actor decides after them) or after the
    actor (they decide once the actor approves)."""
    if position not in ("before", "after"):
        raise ValidationFailed.one("position", "must be before or after")
    approval, tasks, mine = _acting(session, actor, approval_id)
    if not _active(session, approval.organization_id, [user_id]):
        raise ValidationFailed.one("user_id", f"no active user {user_id}", "not_found")
    if user_id == approval.submitter_id:
        # segregation of duties: 加签 can never route a request back to the person who submitted it
        raise ValidationFailed.one("user_id", "the submitter may not approve their own request", "submitter")
    if user_id == actor.user_id or any(
        t.approver_id == user_id and t.step == mine.step and t.status in _OPEN for t in tasks
    ):
        raise ValidationFailed.one("user_id", "this person already approves this step", "duplicate")
    added = _task(approval, mine.step, mine.sequence + (-1 if position == "before" else 1), user_id,
                  TaskStatus.PENDING if position == "before" else TaskStatus.WAITING)  # fmt: skip
    added.added_by_id = actor.user_id
    session.add(added)
    session.flush()
    if position == "before":
        mine.status, mine.waits_for_id = TaskStatus.WAITING, added.id
        _tell(session, approval, [user_id], "task")
    else:
        added.waits_for_id = mine.id
    _event(session, actor, approval, "approver_added", step=mine.step, comment=comment,
           data={"user_id": user_id, "position": position})  # fmt: skip
    _save(session, approval)
    return approval


def withdraw(session: Session, actor: Actor, approval_id: int, *, comment: str | None = None) -> Approval:
    """The submitter takes a pending approval back; the approvers' tasks end."""
    approval = get_approval(session, actor, approval_id, lock=True)
    if not _is_submitter(actor, approval):
        raise Forbidden("only the submitter may withdraw an approval")
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"the approval is already {approval.status}", code="not_pending")
    tasks = _tasks(session, approval)
    waiting = [t.approver_id for t in tasks if t.status == TaskStatus.PENDING]
    for task in tasks:
        if task.status in _OPEN:
            task.status = TaskStatus.CANCELLED
    approval.status, approval.current_step, approval.decided_at = ApprovalStatus.WITHDRAWN, None, utcnow()
    _event(session, actor, approval, "withdrawn", comment=comment)
    _tell(session, approval, waiting, "withdrawn", comment)
    _save(session, approval)
    return approval


def resubmit(
    session: Session,
    actor: Actor,
    approval_id: int,
    *,
    details: Mapping[str, Any] | None = None,
    chosen_approvers: Mapping[str, Sequence[int]] | None = None,
    comment: str | None = None,
) -> Approval:
    """Submit a rejected or withdrawn approval again: a new round with a fresh snapshot of the record
    as it is now (and the flow as it is now); the earlier round stays as it was."""
    previous = get_approval(session, actor, approval_id, lock=True)
    if not _is_submitter(actor, previous):
        raise Forbidden("only the submitter may resubmit an approval")
    if previous.status not in (ApprovalStatus.REJECTED, ApprovalStatus.WITHDRAWN):
        raise Conflict("only a rejected or withdrawn approval can be resubmitted", code="not_resubmittable")
    later = session.scalar(
        select(Approval.id).where(tenant_clause(actor.organization_id, Approval), Approval.previous_id == previous.id)
    )
    if later is not None:
        raise Conflict(f"it was resubmitted already as approval {later}", code="resubmitted")
    approval = _new_approval(
        session, actor, record_type=previous.record_type, record_id=previous.record_id,
        details=previous.details if details is None else details, chosen=chosen_approvers or {},
        comment=comment, previous=previous,
    )  # fmt: skip
    _save(session, previous)
    return approval
