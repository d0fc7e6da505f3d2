"""Daily and weekly report pages (CN-6, 日报/周报): my report with its figures filled in from the
period's records; the team's reports and who has not submitted; the submission rules (sales ops).
The same services as the API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.errors import FieldProblem, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.governance.permissions import Role
from closeloop.org.models import Department, User
from closeloop.reports import service as reports
from closeloop.reports.models import ReportKind, WorkReport
from closeloop.web.i18n import N_, ROLE_LABELS, translations
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

KIND_LABELS = {ReportKind.DAILY: N_("Daily report"), ReportKind.WEEKLY: N_("Weekly report")}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))


def _kind(value: str | None) -> ReportKind:
    return ReportKind.WEEKLY if value == ReportKind.WEEKLY.value else ReportKind.DAILY


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else calendar.today(settings.business_timezone)
    except ValueError:
        raise ValidationFailed.one("day", "is not a date such as 2026-11-27", "invalid_date") from None


def _step(kind: ReportKind) -> timedelta:
    return timedelta(days=1 if kind is ReportKind.DAILY else 7)


def _mine_page(
    request: Request,
    user: User,
    actor: Actor,
    kind: ReportKind,
    day: date,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    with database_of(request).reading(actor) as session:
        report = reports.prepare_report(session, actor, kind=kind, day=day)
        rule = reports.rule_for(session, actor.organization_id, kind)
        deadline = reports.deadline_of(rule, report.period_start) if rule is not None and rule.is_active else None
        session.expunge_all()
    context = {
        "user": user,
        "actor": actor,
        "kind": kind,
        "kind_labels": KIND_LABELS,
        "day": day,
        "previous": day - _step(kind),
        "next": day + _step(kind),
        "report": report,
        "labels": reports.figure_labels(locale_of(request)),
        "values": values,
        "errors": errors or {},
        "saved": saved,
        "deadline": deadline,
    }
    return render(request, "reports/mine.html", context, status_code=status_code)


@router.get("/reports/mine")
def mine(request: Request, kind: str | None = None, day: str | None = None, saved: str | None = None) -> Response:
    user, actor = require_user(request)
    return _mine_page(request, user, actor, _kind(kind), _day(day), saved=bool(saved))


@router.post("/reports/mine")
def save_mine(
    request: Request,
    kind: str = Form("daily"),
    day: str = Form(""),
    summary: str = Form(""),
    plan: str = Form(""),
    problems: str = Form(""),
    action: str = Form("save"),
    csrf: str = Form(""),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    chosen_kind, chosen_day = _kind(kind), _day(day)
    texts = {"summary": summary, "plan": plan, "problems": problems}
    for name, value in texts.items():
        if "\x00" in value:
            raise ValidationFailed.one(name, "must not contain NUL characters", "invalid_character")
    try:
        with database_of(request).unit_of_work(actor) as session:
            reports.save_report(
                session, actor, kind=chosen_kind, day=chosen_day, summary=summary, plan=plan, problems=problems,
                submit=action == "submit",
            )  # fmt: skip
    except ValidationFailed as error:
        translate = translations(locale_of(request)).gettext
        errors = {problem.field: translate(problem.message) for problem in error.problems}
        return _mine_page(request, user, actor, chosen_kind, chosen_day, values=texts, errors=errors, status_code=422)
    target = f"/reports/mine?kind={chosen_kind.value}&day={chosen_day.isoformat()}&saved=1"
    return RedirectResponse(target, status_code=303)


def _names(session: Any, actor: Actor, ids: set[int]) -> dict[int, str]:
    rows = session.execute(
        select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User), User.id.in_(sorted(ids)))
    )
    return {row[0]: row[1] for row in rows}


@router.get("/reports/team")
def team(request: Request, kind: str | None = None, day: str | None = None) -> Response:
    user, actor = require_user(request)
    chosen_kind, chosen_day = _kind(kind), _day(day)
    first, last = reports.period_of(chosen_kind, chosen_day)
    with database_of(request).reading(actor) as session:
        rule, rows = reports.submission_status(session, actor, kind=chosen_kind, day=chosen_day)
        found = {
            report.id: report
            for report in reports.list_reports(session, actor, kind=chosen_kind, first=first, last=first)
        }
        names = _names(session, actor, {report.user_id for report in found.values()})
        rules = {item.kind: item for item in reports.list_rules(session, actor)}
        departments = list(
            session.execute(
                select(Department.id, Department.name)
                .where(tenant_clause(actor.organization_id, Department))
                .order_by(Department.name)
            )
        )
        deadline = reports.deadline_of(rule, first) if rule is not None and rule.is_active else None
        session.expunge_all()
    submitted: list[WorkReport] = [report for report in found.values() if report.submitted_at is not None]
    context = {
        "user": user,
        "actor": actor,
        "kind": chosen_kind,
        "kind_labels": KIND_LABELS,
        "day": chosen_day,
        "first": first,
        "last": last,
        "previous": chosen_day - _step(chosen_kind),
        "next": chosen_day + _step(chosen_kind),
        "rows": rows,
        "missing": [row for row in rows if not row.is_submitted],
        "reports": submitted,
        "names": names,
        "labels": reports.figure_labels(locale_of(request)),
        "rule": rule,
        "deadline": deadline,
        "rules": rules,
        "departments": departments,
        "roles": [
            (role.value, ROLE_LABELS.get(role.value, role.value)) for role in Role if role is not Role.PARTNER_USER
        ],
        "weekdays": WEEKDAYS,
        "may_manage": actor.can("reports:manage"),
    }
    return render(request, "reports/team.html", context)


@router.post("/reports/rules/{kind}")
def save_rule(
    request: Request,
    kind: str,
    deadline: str = Form("18:00"),
    weekday: str = Form("5"),
    roles: list[str] = Form(default=[]),
    department_ids: list[str] = Form(default=[]),
    is_active: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    chosen = _kind(kind)
    if not weekday.isdecimal():
        raise ValidationFailed([FieldProblem("weekday", "must be 1 (Monday) to 7 (Sunday)", "out_of_range")])
    change = reports.RuleChange(
        deadline=deadline.strip(),
        weekday=int(weekday),
        roles=tuple(roles),
        department_ids=tuple(int(value) for value in department_ids if value.isdecimal()),
        is_active=bool(is_active),
    )
    with database_of(request).unit_of_work(actor) as session:
        reports.set_rule(session, actor, kind=chosen, change=change)
    return RedirectResponse(f"/reports/team?kind={chosen.value}", status_code=303)
