"""Targets pages (CN-6, 目标/排行榜): /targets with the period's attainment and the leaderboards, a
form for sales ops to set targets, and the small attainment panel of the home page."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.service import DepartmentNode
from closeloop.targets import service as targets
from closeloop.targets.models import Metric, TargetScope
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

METRIC_LABELS = {
    "contract_amount": N_("Contract amount"),
    "collections": N_("Cash collections"),
    "new_accounts": N_("New accounts"),
    "visits": N_("Visits"),
}
SCOPE_LABELS = {"company": N_("Company"), "department": N_("Department"), "user": N_("Individual")}
MONEY = {"contract_amount", "collections"}
#: persons per page of the people's targets
PEOPLE_PAGE = 20


def home_panel(session: Session, actor: Actor) -> list[dict[str, Any]] | None:
    """The signed-in person's and their department's attainment this month (None without targets:read)."""
    if not actor.can("targets:read"):
        return None
    today = calendar.today(settings.business_timezone)
    return [_row(a) for a in targets.my_attainment(session, actor, year=today.year, month=today.month)]


def _row(attainment: targets.Attainment) -> dict[str, Any]:
    ratio = attainment.ratio
    return {
        "key": attainment.target.subject_key,
        "scope": str(attainment.target.scope),
        "subject": attainment.subject,
        "metric": str(attainment.target.metric),
        "money": str(attainment.target.metric) in MONEY,
        "target": attainment.target.value,
        "actual": attainment.actual,
        "ratio": ratio,
        "bar": min(int(ratio or 0), 100),
    }


def _grouped(
    rows: list[dict[str, Any]], page: int, tree: list[DepartmentNode] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The attainment rows by level (company, departments, people) and, within a level, by metric;
    departments in ``tree`` order (each parent before its children, with its ``depth``), people
    by name a page of :data:`PEOPLE_PAGE` persons at a time (each person with all their metrics)."""
    places = {f"department:{node.id}": (position, node.depth) for position, node in enumerate(tree or [])}
    for row in rows:
        row["depth"] = places.get(row["key"], (0, 0))[1]

    def order(row: dict[str, Any]) -> tuple[int, str]:
        return (places.get(row["key"], (len(places), 0))[0], str(row["subject"]))

    sections: list[dict[str, Any]] = []
    pages = 1
    for scope in ("company", "department", "user"):
        mine = [row for row in rows if row["scope"] == scope]
        if not mine:
            continue
        if scope == "user":
            persons = sorted({(row["subject"], row["key"]) for row in mine})
            pages = max(1, -(-len(persons) // PEOPLE_PAGE))
            shown = {key for _, key in persons[(min(page, pages) - 1) * PEOPLE_PAGE :][:PEOPLE_PAGE]}
            mine = [row for row in mine if row["key"] in shown]
        by_metric: list[dict[str, Any]] = []
        for metric in METRIC_LABELS:
            found = sorted((r for r in mine if r["metric"] == metric), key=order)
            if found:
                by_metric.append({"metric": metric, "rows": found})
        sections.append({"scope": scope, "metrics": by_metric, "count": len({r["key"] for r in mine})})
    return sections, pages


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return value if low <= value <= high else default


@router.get("/targets")
def targets_page(request: Request) -> Response:
    user, actor = require_user(request)
    return _page(request, user, actor)


def _page(
    request: Request, user: User, actor: Actor, *, message: str | None = None, status_code: int = 200
) -> Response:
    now = calendar.today(settings.business_timezone)
    params = request.query_params
    year = _int(params.get("year"), now.year, 2000, 2100)
    month = _int(params.get("month"), now.month, 0, 12)
    page = _int(params.get("page"), 1, 1, 100000)
    metric = str(params.get("metric") or "")
    metric = metric if metric in METRIC_LABELS else "contract_amount"
    with database_of(request).reading(actor) as session:
        rows = [_row(a) for a in targets.attainment(session, actor, year=year, month=month or None)]
        people = targets.leaderboard(session, actor, metric=Metric(metric), year=year, month=month or None, by="user")
        departments = targets.leaderboard(
            session, actor, metric=Metric(metric), year=year, month=month or None, by="department"
        )
        manageable = actor.can("targets:manage")
        tree = org_service.department_tree(session, actor.organization_id)
        user_options = (
            list(
                session.execute(
                    select(User.id, User.display_name)
                    .where(tenant_clause(actor.organization_id, User), User.is_active.is_(True))
                    .order_by(User.display_name)
                )
            )
            if manageable
            else []
        )
    sections, people_pages = _grouped(rows, page, tree)
    department_options = [(node.id, node.name, node.depth) for node in tree] if manageable else []
    context = {
        "user": user,
        "actor": actor,
        "year": year,
        "month": month,
        "metric": metric,
        "rows": rows,
        "sections": sections,
        "page": min(page, people_pages),
        "people_pages": people_pages,
        "people": people,
        "departments": departments,
        "metric_labels": METRIC_LABELS,
        "scope_labels": SCOPE_LABELS,
        "money_metric": metric in MONEY,
        "manageable": manageable,
        "department_options": department_options,
        "user_options": user_options,
        "message": message,
    }
    return render(request, "targets/index.html", context, status_code=status_code)


@router.post("/targets")
def set_target(
    request: Request,
    csrf: str = Form(""),
    scope: str = Form("company"),
    subject: str = Form(""),
    metric: str = Form("contract_amount"),
    year: str = Form(""),
    month: str = Form(""),
    value: str = Form(""),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        if scope not in SCOPE_LABELS or metric not in METRIC_LABELS:
            raise ValidationFailed.one("scope", "is company, department or person, with a known metric")
        try:
            amount = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            raise ValidationFailed.one("value", "is not a number") from None
        subject_id = int(subject) if subject.strip().isdecimal() else None
        chosen = TargetScope(scope)
        with database_of(request).unit_of_work(actor) as session:
            targets.set_target(
                session,
                actor,
                scope=chosen,
                metric=Metric(metric),
                year=_int(year, calendar.today(settings.business_timezone).year, 2000, 2100),
                month=_int(month, 0, 0, 12) or None,
                value=amount,
                department_id=subject_id if chosen is TargetScope.DEPARTMENT else None,
                user_id=subject_id if chosen is TargetScope.USER else None,
            )
    except DomainError as error:
        text = "; ".join(f"{p.field}: {p.message}" for p in error.problems) or error.message
        return _page(request, user, actor, message=text, status_code=error.status)
    return RedirectResponse(f"/targets?year={year}&month={month or 0}&metric={metric}", status_code=303)
