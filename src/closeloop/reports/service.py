"""Daily and weekly reports (CN-6, 日报/周报): fill in, submit, read within reach; the rules of
who must submit by when; who has not; and the reminder the worker sends once per late report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import FieldProblem, NotFound, ValidationFailed
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.fieldwork.plans import people_in_reach
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import Role, require
from closeloop.org import notifications
from closeloop.org.models import Department, User
from closeloop.reports import figures
from closeloop.reports.models import ReportKind, ReportReminder, ReportRule, ReportStatus, WorkReport

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
TEXT_LIMIT = 5000


def period_of(kind: ReportKind, day: date) -> tuple[date, date]:
    """The day itself for a daily report; its Monday-to-Sunday week for a weekly one."""
    return (day, day) if kind is ReportKind.DAILY else calendar.week_of(day)


def _timezone() -> str:
    return settings.business_timezone


def _fresh_figures(session: Session, organization_id: int, user_id: int, first: date, last: date) -> dict[str, Any]:
    window = figures.Window.of(organization_id, [user_id], first, last, _timezone())
    return figures.compute(session, window)[user_id]


def _find(session: Session, actor: Actor, user_id: int, kind: ReportKind, first: date) -> WorkReport | None:
    return session.scalar(
        visible(actor, WorkReport, access=RowAccess.WRITE).where(
            WorkReport.user_id == user_id, WorkReport.kind == kind, WorkReport.period_start == first
        )
    )


def prepare_report(session: Session, actor: Actor, *, kind: ReportKind, day: date) -> WorkReport:
    """The actor's report for the period holding ``day``: the stored one, its figures refreshed
    while it is a draft, or a new unsaved draft already filled in from the period's records."""
    require(actor, "reports:write")
    if actor.user_id is None:
        raise ValidationFailed.one("user_id", "only a person writes a report", "person_required")
    first, last = period_of(kind, day)
    report = _find(session, actor, actor.user_id, kind, first)
    if report is None:
        report = WorkReport(
            organization_id=actor.organization_id,
            user_id=actor.user_id,
            kind=kind,
            period_start=first,
            period_end=last,
            status=ReportStatus.DRAFT,
            is_late=False,
        )
    if report.status is not ReportStatus.SUBMITTED:
        report.figures = _fresh_figures(session, actor.organization_id, actor.user_id, first, last)
        report.figures_at = utcnow()
    return report


def _clean(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise ValidationFailed.one(name, f"must be at most {TEXT_LIMIT} characters", "too_long")
    return value or None


def save_report(
    session: Session,
    actor: Actor,
    *,
    kind: ReportKind,
    day: date,
    summary: str | None,
    plan: str | None,
    problems: str | None,
    submit: bool,
) -> WorkReport:
    """Save the actor's own report (and submit it when ``submit``). Figures are refreshed until
    submission and kept as they were at submission afterwards; the text stays editable."""
    texts = {
        "summary": _clean("summary", summary),
        "plan": _clean("plan", plan),
        "problems": _clean("problems", problems),
    }
    if submit and not texts["summary"]:
        raise ValidationFailed.one("summary", "a submitted report needs a summary", "required")
    if day > calendar.today(_timezone()) + timedelta(days=7):
        raise ValidationFailed.one("day", "is too far in the future", "invalid_date")
    report = prepare_report(session, actor, kind=kind, day=day)
    is_new = report.id is None
    before = {name: getattr(report, name) for name in ("summary", "plan", "problems", "status")}
    for name, value in texts.items():
        setattr(report, name, value)
    if submit and report.status is not ReportStatus.SUBMITTED:
        now = utcnow()
        report.status = ReportStatus.SUBMITTED
        report.submitted_at = now
        rule = rule_for(session, actor.organization_id, kind)
        report.is_late = rule is not None and now > deadline_of(rule, report.period_start)
    if is_new:
        session.add(report)
    session.flush()
    after = {name: getattr(report, name) for name in ("summary", "plan", "problems", "status")}
    audit.record(
        session,
        actor,
        "work_report.submitted" if submit and before["status"] != ReportStatus.SUBMITTED else "work_report.saved",
        subject_type="work_report",
        subject_id=report.id,
        changes=audit.diff(before if not is_new else {}, after),
    )
    return report


def get_report(session: Session, actor: Actor, *, report_id: int) -> WorkReport:
    require(actor, "reports:read")
    report = session.scalar(visible(actor, WorkReport, access=RowAccess.READ).where(WorkReport.id == report_id))
    if report is None:
        raise NotFound("work_report", report_id)
    return report


def list_reports(
    session: Session,
    actor: Actor,
    *,
    kind: ReportKind,
    first: date,
    last: date,
    user_id: int | None = None,
    limit: int = 200,
) -> list[WorkReport]:
    """Submitted reports (and the actor's own drafts) of the people in reach, newest period first."""
    require(actor, "reports:read")
    statement = visible(actor, WorkReport, access=RowAccess.READ).where(
        WorkReport.kind == kind, WorkReport.period_start >= period_of(kind, first)[0], WorkReport.period_start <= last
    )
    if user_id is not None:
        statement = statement.where(WorkReport.user_id == user_id)
    statement = statement.where(
        (WorkReport.status == ReportStatus.SUBMITTED) | (WorkReport.user_id == (actor.user_id or 0))
    )
    return list(session.scalars(statement.order_by(WorkReport.period_start.desc(), WorkReport.id).limit(limit)))


def report_body(report: WorkReport, names: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": report.id,
        "user_id": report.user_id,
        "user_name": (names or {}).get(report.user_id),
        "kind": report.kind,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        "status": report.status,
        "submitted_at": report.submitted_at,
        "is_late": report.is_late,
        "figures": report.figures,
        "figures_at": report.figures_at,
        "summary": report.summary,
        "plan": report.plan,
        "problems": report.problems,
        "version": report.version or None,
    }


def figure_labels(locale: str) -> list[dict[str, Any]]:
    zh = locale.startswith("zh")
    return [
        {"key": item.key, "label": item.label_zh if zh else item.label_en, "has_amount": item.has_amount}
        for item in figures.FIGURES
    ]


# --- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleChange:
    deadline: str = "18:00"
    weekday: int = 5
    roles: Sequence[str] = ()
    department_ids: Sequence[int] = ()
    is_active: bool = True


def rule_for(session: Session, organization_id: int, kind: ReportKind) -> ReportRule | None:
    return session.scalar(select(ReportRule).where(tenant_clause(organization_id, ReportRule), ReportRule.kind == kind))


def list_rules(session: Session, actor: Actor) -> list[ReportRule]:
    require(actor, "reports:read")
    return list(
        session.scalars(
            select(ReportRule).where(tenant_clause(actor.organization_id, ReportRule)).order_by(ReportRule.kind)
        )
    )


def set_rule(session: Session, actor: Actor, *, kind: ReportKind, change: RuleChange) -> ReportRule:
    """Who must submit ``kind`` reports, and by when (sales ops)."""
    require(actor, "reports:manage")
    problems: list[FieldProblem] = []
    if not _CLOCK.match(change.deadline):
        problems.append(FieldProblem("deadline", "must be a time such as 18:00", "invalid_time"))
    if not 1 <= change.weekday <= 7:
        problems.append(FieldProblem("weekday", "must be 1 (Monday) to 7 (Sunday)", "out_of_range"))
    known_roles = {role.value for role in Role}
    for index, role in enumerate(change.roles):
        if role not in known_roles:
            problems.append(FieldProblem(f"roles[{index}]", "is not a role", "unknown_role"))
    departments = set(
        session.scalars(
            select(Department.id).where(
                tenant_clause(actor.organization_id, Department), Department.id.in_(list(change.department_ids))
            )
        )
    )
    for index, department_id in enumerate(change.department_ids):
        if department_id not in departments:
            problems.append(FieldProblem(f"department_ids[{index}]", "is not a department", "not_found"))
    if problems:
        raise ValidationFailed(problems)
    rule = rule_for(session, actor.organization_id, kind)
    values = {
        "deadline": change.deadline,
        "weekday": change.weekday,
        "roles": sorted(set(change.roles)),
        "department_ids": sorted(set(change.department_ids)),
        "is_active": change.is_active,
    }
    before: dict[str, Any] = {}
    if rule is None:
        rule = ReportRule(organization_id=actor.organization_id, kind=kind, **values)
        session.add(rule)
    else:
        before = {name: getattr(rule, name) for name in values}
        for name, value in values.items():
            setattr(rule, name, value)
    session.flush()
    audit.record(
        session, actor, "report_rule.set", subject_type="report_rule", subject_id=rule.id,
        changes=audit.diff(before, values),
    )  # fmt: skip
    return rule


def rule_body(rule: ReportRule) -> dict[str, Any]:
    return {
        "kind": rule.kind,
        "deadline": rule.deadline,
        "weekday": rule.weekday,
        "roles": rule.roles,
        "department_ids": rule.department_ids,
        "is_active": rule.is_active,
        "timezone": _timezone(),
        "version": rule.version,
    }


def deadline_of(rule: ReportRule, period_start: date) -> datetime:
    """When the report of the period starting ``period_start`` is due (UTC)."""
    day = period_start if rule.kind == ReportKind.DAILY else period_start + timedelta(days=rule.weekday - 1)
    return calendar.at_local(day, rule.deadline, _timezone())


def required_people(session: Session, organization_id: int, rule: ReportRule) -> list[User]:
    """The active people a rule asks to submit: role among its roles and department at or below
    one of its departments (an empty list does not narrow)."""
    statement = select(User).where(tenant_clause(organization_id, User), User.is_active.is_(True))
    if rule.roles:
        statement = statement.where(User.role.in_(list(rule.roles)))
    if rule.department_ids:
        tree = (
            select(Department.id)
            .where(tenant_clause(organization_id, Department), Department.id.in_(list(rule.department_ids)))
            .cte("report_departments", recursive=True)
        )
        tree = tree.union(
            select(Department.id).where(tenant_clause(organization_id, Department), Department.parent_id == tree.c.id)
        )
        statement = statement.where(User.department_id.in_(select(tree.c.id)))
    return list(session.scalars(statement.order_by(User.display_name, User.id)))


@dataclass(frozen=True)
class Submission:
    user_id: int
    name: str
    report_id: int | None
    submitted_at: datetime | None
    is_late: bool

    @property
    def is_submitted(self) -> bool:
        return self.submitted_at is not None


def _submitted(
    session: Session, organization_id: int, kind: ReportKind, first: date, ids: list[int]
) -> dict[int, WorkReport]:
    return {
        report.user_id: report
        for report in session.scalars(
            select(WorkReport).where(
                tenant_clause(organization_id, WorkReport),
                WorkReport.kind == kind,
                WorkReport.period_start == first,
                WorkReport.status == ReportStatus.SUBMITTED,
                WorkReport.user_id.in_(ids),
            )
        )
    }


def submission_status(
    session: Session, actor: Actor, *, kind: ReportKind, day: date
) -> tuple[ReportRule | None, list[Submission]]:
    """Of the people in the actor's reach who must submit (everyone in reach when no rule is
    set), who has submitted the report of the period holding ``day``."""
    require(actor, "reports:read")
    first, _last = period_of(kind, day)
    rule = rule_for(session, actor.organization_id, kind)
    reach = {person.id: person for person in people_in_reach(session, actor)}
    if rule is not None and rule.is_active:
        people = [person for person in required_people(session, actor.organization_id, rule) if person.id in reach]
    else:
        people = list(reach.values())
    done = _submitted(session, actor.organization_id, kind, first, [person.id for person in people])
    return rule, [
        Submission(
            person.id,
            person.display_name,
            done[person.id].id if person.id in done else None,
            done[person.id].submitted_at if person.id in done else None,
            done[person.id].is_late if person.id in done else False,
        )
        for person in people
    ]


# --- reminders ----------------------------------------------------------------------------------


def _due_period(rule: ReportRule, now: datetime) -> date | None:
    """The start of the latest period whose deadline has passed by ``now`` (today's day or this
    week), or ``None`` when this period's deadline is still ahead."""
    today = calendar.local_date(now, _timezone())
    first, _last = period_of(ReportKind(rule.kind), today)
    return first if now >= deadline_of(rule, first) else None


_KIND_WORDS = {ReportKind.DAILY: ("日报", "daily report"), ReportKind.WEEKLY: ("周报", "weekly report")}


def send_reminders(session: Session, actor: Actor) -> list[int]:
    """Remind everyone who must submit and has not, once the deadline has passed — at most once
    per person and period, however often it runs. Returns the people reminded now."""
    now = utcnow()
    organization_id = actor.organization_id
    reminded: list[int] = []
    rules = session.scalars(
        select(ReportRule).where(tenant_clause(organization_id, ReportRule), ReportRule.is_active.is_(True))
    )
    for rule in list(rules):
        kind = ReportKind(rule.kind)
        first = _due_period(rule, now)
        if first is None:
            continue
        people = required_people(session, organization_id, rule)
        ids = [person.id for person in people]
        done = _submitted(session, organization_id, kind, first, ids)
        already = set(
            session.scalars(
                select(ReportReminder.user_id).where(
                    tenant_clause(organization_id, ReportReminder),
                    ReportReminder.kind == kind,
                    ReportReminder.period_start == first,
                    ReportReminder.user_id.in_(ids),
                )
            )
        )
        word_zh, word_en = _KIND_WORDS[kind]
        for person in people:
            if person.id in done or person.id in already:
                continue
            session.add(
                ReportReminder(
                    organization_id=organization_id, user_id=person.id, kind=kind, period_start=first, sent_at=now
                )
            )
            notifications.notify(
                session,
                organization_id=organization_id,
                user_id=person.id,
                message=notifications.Message(
                    kind="report_reminder",
                    title_zh=f"请提交{first.isoformat()}的{word_zh}（截止 {rule.deadline}）",
                    title_en=f"Please submit your {word_en} for {first.isoformat()} (due {rule.deadline})",
                    link=f"/reports/mine?kind={kind.value}&day={first.isoformat()}",
                ),
            )
            reminded.append(person.id)
        session.flush()
    if reminded:
        audit.record(
            session, actor, "work_report.reminded", subject_type="organization", subject_id=organization_id,
            changes={"user_ids": [None, reminded]},
        )  # fmt: skip
    return reminded
