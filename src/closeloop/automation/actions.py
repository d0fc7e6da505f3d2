"""What a firing does. Notifications, escalations, summaries and approval requests happen with the
decision; tasks, field changes, assignments and webhooks wait out the rule's undo window as
:class:`PendingAction` rows and run through the record services (audited) when it ends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.approvals import service as approval_service
from closeloop.automation import explain
from closeloop.automation.definition import ROLE_ALIASES, team_of
from closeloop.automation.metrics import MODELS
from closeloop.automation.models import PendingAction
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor, ActorKind
from closeloop.core.clock import as_utc
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import LeadStatus, Stage, TicketStatus
from closeloop.crm.leads import service as lead_service
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.tasks.service import NewTask, open_system_tasks
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.fields import policy as field_policy
from closeloop.org import service as org_service
from closeloop.org.models import Department, Organization, User
from closeloop.org.notifications import Message, notice_row, notify


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
    #: when set, notices are gathered there instead of sent one per record (a run over people)
    digest: Digest | None = None
    #: when set, notices are rows added here, written with the batch they belong to (the drain's)
    notices: list[dict[str, Any]] | None = None
    #: what :func:`explain.why` wrote the reason from (rule version, event type, conditions with the
    #: values seen, actions), so that a person whose field masks hide a value gets it without
    explained: Mapping[str, Any] | None = None


MASKED = "•••"


def why_for(session: Session, firing: Firing, user_ids: Sequence[int | None]) -> dict[int | None, tuple[str, str]]:
    """The reason of a firing as each person may read it: a condition on a field their role's masks
    hide shows no value (a rule's notice, task or approval is no way round a field mask)."""
    plain = (firing.why_zh, firing.why_en)
    explained = firing.explained
    if explained is None or not user_ids:
        return dict.fromkeys(user_ids, plain)
    wanted = sorted({u for u in user_ids if u is not None})
    roles = dict(session.execute(select(User.id, User.role).where(User.id.in_(wanted or [-1]))).all())
    matrix = field_policy(session, firing.organization_id)
    conditions = [c for c in explained.get("conditions", []) if isinstance(c, Mapping)]
    texts: dict[str | None, tuple[str, str]] = {}

    def hidden(role: str, condition: Mapping[str, Any]) -> bool:
        name = str(condition.get("field_or_metric") or "")
        noun, _, field_name = ("opportunity", "", "amount") if name == "forecast_deviation" else name.partition(".")
        if not field_name or noun not in MODELS:
            return False
        masked = matrix.masked(role, noun)
        return field_name in masked or field_name.removeprefix("custom.") in masked

    def text(role: str | None) -> tuple[str, str]:
        if role not in texts:
            if role is not None and not any(hidden(role, c) for c in conditions):
                texts[role] = plain
            else:  # nobody known: hide what any rule author's mask could cover
                shown = [
                    {**{k: v for k, v in c.items() if k != "detail"}, "seen": MASKED}
                    if role is None or hidden(role, c)
                    else c
                    for c in conditions
                ]
                texts[role] = explain.why(
                    rule_name=firing.rule_name, version=int(explained.get("version") or 0),
                    event_type=str(explained.get("event_type") or ""), record_type=firing.record_type,
                    record_id=firing.record_id, conditions=shown,
                    actions=[a for a in explained.get("actions", []) if isinstance(a, Mapping)],
                    record_name=explain.name_of(_record(session, firing)),
                )  # fmt: skip
        return texts[role]

    return {user_id: text(None if user_id is None else roles.get(user_id)) for user_id in user_ids}


def _masked_for(body: tuple[str, str], firing: Firing, why: tuple[str, str]) -> tuple[str, str]:
    """``body`` with the firing's reason replaced by ``why`` (the reader's version of it)."""
    if why == (firing.why_zh, firing.why_en):
        return body
    return body[0].replace(firing.why_zh, why[0]), body[1].replace(firing.why_en, why[1])


@dataclass
class Digest:
    """The notices of one scheduled run over people (forecast deviation per rep …), gathered so that
    each recipient gets one notice listing every person with their figure, in the order of the run,
    while each person keeps a decision record of their own."""

    rule_id: int
    rule_name: str
    #: (recipient, kind, link, the rule's own words) → one (zh, en) line per person
    lines: dict[tuple[int, str, str | None, str], list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, user_id: int, kind: str, link: str | None, content: str, line: tuple[str, str]) -> None:
        self.lines.setdefault((user_id, kind, link, content), []).append(line)

    def send(self, session: Session, organization_id: int) -> int:
        """One notice per recipient (and kind of notice); returns how many were sent."""
        for (user_id, kind, link, content), lines in self.lines.items():
            count = len(lines)
            head = [content] if content else []
            notify(
                session,
                organization_id=organization_id,
                user_id=user_id,
                message=Message(
                    kind,
                    f"规则提醒：{self.rule_name}（{count}人）",
                    f"Rule: {self.rule_name} ({count} {'person' if count == 1 else 'people'})",
                    "\n".join([*head, *(f"- {zh}" for zh, _ in lines)]),
                    "\n".join([*head, *(f"- {en}" for _, en in lines)]),
                    link or f"/automation/decisions?rule_id={self.rule_id}",
                ),
            )
        return len(self.lines)


def _record(session: Session, firing: Firing) -> Any:
    if firing.record is not None:
        return firing.record
    model = MODELS.get(firing.record_type)
    if model is None:
        return None
    return session.scalar(
        select(model).where(tenant_clause(firing.organization_id, model), model.id == firing.record_id)
    )


def owner_of(record: Any) -> int | None:
    if record is None:
        return None
    if isinstance(record, User):  # a rule about a person (forecast deviation): they answer for themselves
        return record.id
    if isinstance(record, Activity):
        return record.user_id
    return getattr(record, "owner_id", None)


def _account_owner(session: Session, firing: Firing, record: Any) -> int | None:
    if firing.record_type == "account":
        return owner_of(record)
    account_id = getattr(record, "account_id", None)
    if account_id is None:
        return owner_of(record)
    found = _record(session, replace(firing, record_type="account", record_id=account_id, record=None))
    return owner_of(found)


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
    team = team_of(target)
    if team is not None:  # everyone in it (an assignment picks one member: see pick_member)
        return team_members(session, firing.organization_id, team, firing.rule_owner_id)
    if target.startswith("role:"):
        role = ROLE_ALIASES.get(target[5:], target[5:])
        if firing.record_type == "user":  # "their regional manager": the nearest above the person holding the role
            return _above(session, firing.organization_id, owner_of(record), role)
        return list(
            session.scalars(
                select(User.id)
                .where(tenant_clause(firing.organization_id, User), User.role == role, User.is_active.is_(True))
                .order_by(User.id)
            )
        )
    owner_id = _account_owner(session, firing, record) if target == "account_owner" else owner_of(record)
    if target == "manager":
        owner = _user(session, firing.organization_id, owner_id)
        manager_id = owner.manager_id if owner is not None else None
        return [manager_id] if manager_id is not None else []
    return [owner_id] if owner_id is not None else []


def _above(session: Session, organization_id: int, user_id: int | None, role: str) -> list[int]:
    """The nearest active person up ``user_id``'s reporting line who holds ``role`` (none: empty)."""
    seen: set[int] = set()
    person = _user(session, organization_id, user_id)
    while person is not None and person.manager_id is not None and person.manager_id not in seen:
        seen.add(person.manager_id)
        person = _user(session, organization_id, person.manager_id)
        if person is not None and person.role == role and person.is_active:
            return [person.id]
    return []


def team_members(session: Session, organization_id: int, team: str, rule_owner_id: int) -> list[int]:
    """The active people of a team, by id: ``reports`` (the rule owner's direct reports),
    ``reports:<user id>``, ``department:<id>`` or a department's name (each with its sub-departments)."""
    users = tenant_clause(organization_id, User), User.is_active.is_(True)
    if team == "reports" or team.startswith("reports:"):
        manager_id = rule_owner_id if team == "reports" else int(team[8:])
        return list(session.scalars(select(User.id).where(*users, User.manager_id == manager_id).order_by(User.id)))
    departments = session.execute(
        select(Department.id, Department.name, Department.parent_id).where(tenant_clause(organization_id, Department))
    ).all()
    wanted = {row.id for row in departments if f"department:{row.id}" == team or row.name.lower() == team.lower()}
    grew = True
    while grew:  # add the sub-departments
        below = {row.id for row in departments if row.parent_id in wanted} - wanted
        grew = bool(below)
        wanted |= below
    if not wanted:
        return []
    return list(
        session.scalars(select(User.id).where(*users, User.department_id.in_(sorted(wanted))).order_by(User.id))
    )


def _open_records(model: type[Any]) -> list[Any]:
    """What counts as a person's open load of one kind of record (least-loaded assignment)."""
    clauses: list[Any] = []
    if hasattr(model, "deleted_at"):
        clauses.append(model.deleted_at.is_(None))
    if model.__tablename__ == "leads":
        clauses.append(model.status.in_([LeadStatus.NEW, LeadStatus.WORKING, LeadStatus.QUALIFIED]))
    elif model.__tablename__ == "opportunities":
        clauses.append(model.stage.not_in([Stage.WON, Stage.LOST]))
    elif model.__tablename__ == "tickets":
        clauses.append(model.status.in_([TicketStatus.OPEN, TicketStatus.IN_PROGRESS]))
    return clauses


def pick_member(session: Session, firing: Firing, team: str, strategy: str, delivery_id: int) -> list[int]:
    """The one team member an assignment goes to: in turn after the last one this rule's action
    picked (``round_robin``), or the one with the fewest open records of the kind (``least_loaded``,
    ties to the lowest id). Both are decided from the database, so they hold across workers."""
    members = team_members(session, firing.organization_id, team, firing.rule_owner_id)
    if not members:
        return []
    model = MODELS.get(firing.record_type)
    if strategy == "least_loaded" and model is not None and hasattr(model, "owner_id"):
        from sqlalchemy import func

        load: dict[int, int] = dict(
            session.execute(
                select(model.owner_id, func.count(model.id))
                .where(tenant_clause(firing.organization_id, model), model.owner_id.in_(members), *_open_records(model))
                .group_by(model.owner_id)
            ).all()
        )
        return [min(members, key=lambda user_id: (load.get(user_id, 0), user_id))]
    this = session.get(PendingAction, delivery_id)
    previous = session.scalars(
        select(PendingAction.result)
        .where(
            tenant_clause(firing.organization_id, PendingAction),
            PendingAction.rule_id == firing.rule_id,
            PendingAction.position == (this.position if this is not None else 0),
            PendingAction.status == "done",
        )
        .order_by(PendingAction.finished_at.desc(), PendingAction.id.desc())
        .limit(1)
    ).first()
    last = previous.get("value") if isinstance(previous, dict) else None
    after = [user_id for user_id in members if isinstance(last, int) and user_id > last]
    return [after[0] if after else members[0]]


def _link(firing: Firing) -> str:
    return f"/automation/decisions?record_type={firing.record_type}&record_id={firing.record_id}"


#: the parser's ``params.content`` for "the list of reps / 销售名单": the digest itself
LIST_OF_PEOPLE = "list_of_reps"


def _tell(
    session: Session,
    firing: Firing,
    users: list[int],
    kind: str,
    title: tuple[str, str],
    body: tuple[str, str],
    link: str | None = None,
    content: str = "",
) -> None:
    readable = why_for(session, firing, users)
    if firing.digest is not None:  # one line per person: who, and why (the rule's own words head the notice)
        person = _record(session, firing)
        label = getattr(person, "display_name", None) or f"#{firing.record_id}"
        for user_id in users:
            why_zh, why_en = readable[user_id]
            firing.digest.add(user_id, kind, link, content, (f"{label}：{why_zh}", f"{label}: {why_en}"))
        return
    for user_id in users:
        zh, en = _masked_for(body, firing, readable[user_id])
        message = Message(kind, title[0], title[1], zh, en, link or _link(firing))
        if firing.notices is not None:
            firing.notices.append(notice_row(organization_id=firing.organization_id, user_id=user_id, message=message))
        else:
            notify(session, organization_id=firing.organization_id, user_id=user_id, message=message)


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
            why="\n".join(why_for(session, firing, [None])[None]),
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
    # what the rule pushes with the notice (a product comparison page …): its words first, then why
    link = str(params["link"]) if isinstance(params.get("link"), str) else None
    content = str(params.get("content") or "") if isinstance(params.get("content"), str) else ""
    body = (f"{content}\n{why[0]}", f"{content}\n{why[1]}") if content else why
    _tell(
        session,
        firing,
        users,
        "automation.notice",
        (f"规则提醒：{firing.rule_name}", f"Rule: {firing.rule_name}"),
        body,
        link,
        # "send the list of reps" is what a digest is: its words are not repeated above the list
        "" if content == LIST_OF_PEOPLE else content,
    )
    return {"notified": users} | ({"link": link} if link else {})


def rule_actor(session: Session, firing: Firing) -> Actor:
    """The rule acts with its owner's rights (field security and all), marked as a rule in the audit trail."""
    owner = _user(session, firing.organization_id, firing.rule_owner_id)
    base = org_service.system_actor(firing.organization_id) if owner is None else org_service.actor_for(session, owner)
    return replace(base, kind=ActorKind.RULE, label=f"rule {firing.rule_id}: {firing.rule_name}"[:200])


def _languages(session: Session, organization_id: int, user_ids: Sequence[int]) -> dict[int, str]:
    """Each person's language for what a rule writes them (a task's description): their own setting,
    else the organization's default; ``en`` or ``zh``."""
    default = session.scalar(select(Organization.default_locale).where(Organization.id == organization_id))
    rows = session.execute(
        select(User.id, User.locale).where(tenant_clause(organization_id, User), User.id.in_(sorted(set(user_ids))))
    ).all()
    chosen = {row.id: row.locale or default or settings.default_locale for row in rows}
    return {user_id: "en" if str(locale).startswith("en") else "zh" for user_id, locale in chosen.items()}


def _due(params: Mapping[str, Any], now: datetime) -> date | None:
    """A task's due date, a day of the business time zone: "today" there, or so long after now
    (working days skip weekends)."""
    local = as_utc(now).astimezone(calendar.zone(settings.business_timezone))
    if params.get("due") == "today":
        return local.date()
    due_in = params.get("due_in")
    if not isinstance(due_in, Mapping):
        return None
    value, unit = float(due_in.get("value", 0)), str(due_in.get("unit", "day"))
    if unit == "business_day":
        return calendar.add_business_days(local.date(), round(value))
    days = {"hour": value / 24, "day": value, "week": value * 7, "month": value * 30}
    return (local + timedelta(days=days.get(unit, value))).date()


def run_deferred(session: Session, firing: Firing, action: Mapping[str, Any], *, delivery_id: int) -> dict[str, Any]:
    """Do an action whose undo window has ended (create_task, set_field, assign, webhook)."""
    kind, target = (
        str(action["type"]),
        str(action.get("target") or ("auto" if action["type"] == "apply_playbook" else "owner")),
    )
    params = action.get("params") or {}
    actor = rule_actor(session, firing)
    if kind == "create_task":
        found = recipients(session, firing, target)
        fallback: dict[str, Any] = {}
        if not found:  # nobody answers for the record (an unassigned lead): the rule's author gets the task
            author = _user(session, firing.organization_id, firing.rule_owner_id)
            if author is None or not author.is_active:
                raise ValueError(f"nobody to give the task to: {target} is nobody and the rule's author is gone")
            found = [author.id]
            fallback = {"fallback": "rule_owner", "wanted": target}
        readable = why_for(session, firing, found)
        languages = _languages(session, firing.organization_id, found)
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
                    description=readable[user_id][1 if languages.get(user_id) == "en" else 0],
                    due_on=_due(params, firing.now),
                )
                for user_id in found
            ],
        )
        return {"task_ids": ids, "owners": found} | fallback
    if kind in ("set_field", "assign"):
        if kind == "assign":
            team = team_of(target)
            if team is not None:
                users = pick_member(session, firing, team, str(params.get("strategy") or "round_robin"), delivery_id)
            else:
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
        if noun == "lead":  # through the lead's service: a new owner is a ``lead.assigned`` too
            lead_service.update_lead(session, actor, lead_id=int(record_id), data={field: value_any})
        elif noun == "account":  # through the account's: a new owner is ``account.transferred`` too
            account_service.update_account(session, actor, account_id=int(record_id), data={field: value_any})
        elif noun == "opportunity":  # through the deal's: a new stage writes its history and closing fields
            data: dict[str, Any] = {field: value_any}
            if field == "stage" and params.get("lost_reason"):
                data["lost_reason"] = str(params["lost_reason"])
            opportunity_service.update_opportunity(session, actor, opportunity_id=int(record_id), data=data)
        else:
            record = records.get(session, actor, record_type, int(record_id), access=RowAccess.WRITE)
            records.update(session, actor, record_type, record, {field: value_any})
        return {"record": f"{noun}:{record_id}", "field": field, "value": value_any}
    if kind == "webhook":
        from closeloop.automation import webhooks

        delivery = webhooks.enqueue(
            session, organization_id=firing.organization_id, pending_action_id=delivery_id,
            decision_id=firing.decision_id, rule_id=firing.rule_id, rule_name=firing.rule_name,
            record_type=firing.record_type, record_id=firing.record_id, url=target,
            why=(firing.why_zh, firing.why_en), now=firing.now,
        )  # fmt: skip
        return webhooks.delivery_body(delivery, brief=True)
    if kind == "reserve_stock":
        from decimal import Decimal

        from closeloop.forecasting import signals

        record = _record(session, firing)
        account_id = firing.record_id if firing.record_type == "account" else getattr(record, "account_id", None)
        if account_id is None:
            raise ValueError("a reservation is made for an account")
        reservation = signals.reserve(
            session, firing.organization_id, account_id=int(account_id), product=target[8:],
            quantity=Decimal(str(params.get("quantity"))), reason=f"rule {firing.rule_id}: {firing.rule_name}",
            decision_id=firing.decision_id,
        )  # fmt: skip
        return {
            "reservation_id": reservation.id,
            "product_id": reservation.product_id,
            "dealer_stock_id": reservation.dealer_stock_id,
            "quantity": float(reservation.quantity),
        }
    if kind == "apply_playbook":
        from closeloop.automation import playbooks

        if firing.record_type != "opportunity":
            raise ValueError("a playbook is applied to an opportunity")
        return playbooks.apply(session, actor, firing.record_id, target or "auto", firing.now, _link(firing))
    raise ValueError(f"unknown action {kind}")
