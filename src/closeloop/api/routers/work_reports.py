"""Daily and weekly reports (CN-6, 日报/周报): your own report filled in from the period's records,
your team's reports, who has not submitted, and the submission rules.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.crm.schemas import Schema
from closeloop.db.scope import tenant_clause
from closeloop.org.models import User
from closeloop.reports import service as reports
from closeloop.reports.models import ReportKind

router = APIRouter(tags=["reports"])

Kind = Annotated[ReportKind, Query(description="daily (日报) or weekly (周报)")]
Day = Annotated[date | None, Query(description="a day of the period (default: today)")]
ReportText = Annotated[str, Field(max_length=reports.TEXT_LIMIT)] | None


class ReportBody(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    day: date | None = Field(default=None, description="a day of the period (default: today)")
    summary: ReportText = None
    plan: ReportText = None
    problems: ReportText = None
    submit: bool = Field(default=False, description="submit now (figures are kept as they are at submission)")


class RuleBody(Schema):
    model_config = ConfigDict(extra="forbid")

    deadline: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time, HH:MM")] = "18:00"
    weekday: Annotated[int, Field(ge=1, le=7, description="weekly reports: 1 Monday … 7 Sunday")] = 5
    roles: Annotated[list[Annotated[str, Field(max_length=32)]], Field(default_factory=list, max_length=20)]
    department_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(default_factory=list, max_length=200)
    ]
    is_active: bool = True


def _today() -> date:
    return calendar.today(settings.business_timezone)


def _names(session: Session, actor: Actor, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User), User.id.in_(sorted(ids)))
    )
    return {row[0]: row[1] for row in rows}


def _with_labels(body: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return {**body, "figure_labels": reports.figure_labels(actor.locale)}


@router.get(
    "/work-reports/mine",
    operation_id="get_my_work_report",
    summary="Your report for a day or week, its figures filled in from that period's records",
    response_class=Response,
)
def get_mine(database: DatabaseDep, actor: CurrentActor, kind: Kind, day: Day = None) -> Response:
    with database.reading(actor) as session:
        report = reports.prepare_report(session, actor, kind=kind, day=day or _today())
        body = reports.report_body(report)
    return json_response(_with_labels(body, actor))


@router.put(
    "/work-reports/mine",
    operation_id="save_my_work_report",
    summary="Save (and with submit=true, submit) your report; the figures are recomputed from the records",
    response_class=Response,
)
def save_mine(database: DatabaseDep, actor: CurrentActor, body: Annotated[ReportBody, Body()]) -> Response:
    with database.writing(actor) as session:
        report = reports.save_report(
            session,
            actor,
            kind=body.kind,
            day=body.day or _today(),
            summary=body.summary,
            plan=body.plan,
            problems=body.problems,
            submit=body.submit,
        )
        payload = reports.report_body(report)
        commit(session)
    return json_response(_with_labels(payload, actor))


@router.get(
    "/work-reports/status",
    operation_id="get_work_report_status",
    summary="Of the people in your reach who must submit, who has (and late or not) and who has not",
    response_class=Response,
)
def status(database: DatabaseDep, actor: CurrentActor, kind: Kind, day: Day = None) -> Response:
    chosen = day or _today()
    with database.reading(actor) as session:
        rule, rows = reports.submission_status(session, actor, kind=kind, day=chosen)
        first, last = reports.period_of(kind, chosen)
        deadline = reports.deadline_of(rule, first) if rule is not None else None
    items = [
        {
            "user_id": row.user_id,
            "name": row.name,
            "submitted": row.is_submitted,
            "report_id": row.report_id,
            "submitted_at": row.submitted_at,
            "is_late": row.is_late,
        }
        for row in rows
    ]
    return json_response(
        {
            "kind": kind,
            "period_start": first.isoformat(),
            "period_end": last.isoformat(),
            "deadline": deadline,
            "rule": reports.rule_body(rule) if rule is not None else None,
            "submitted": sum(1 for row in rows if row.is_submitted),
            "missing": [row.user_id for row in rows if not row.is_submitted],
            "items": items,
        }
    )


@router.get(
    "/work-reports/rules",
    operation_id="list_work_report_rules",
    summary="Who must submit daily and weekly reports, and by when",
    response_class=Response,
)
def list_rules(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [reports.rule_body(rule) for rule in reports.list_rules(session, actor)]
    return json_response({"items": items})


@router.put(
    "/work-reports/rules/{kind}",
    operation_id="set_work_report_rule",
    summary="Set who must submit a kind of report (roles, departments) and the deadline (sales ops)",
    response_class=Response,
)
def set_rule(
    database: DatabaseDep,
    actor: CurrentActor,
    kind: Annotated[ReportKind, Path(description="daily or weekly")],
    body: Annotated[RuleBody, Body()],
) -> Response:
    change = reports.RuleChange(
        deadline=body.deadline,
        weekday=body.weekday,
        roles=tuple(body.roles),
        department_ids=tuple(body.department_ids),
        is_active=body.is_active,
    )
    with database.writing(actor) as session:
        rule = reports.set_rule(session, actor, kind=kind, change=change)
        payload = reports.rule_body(rule)
        commit(session)
    return json_response(payload)


@router.get(
    "/work-reports",
    operation_id="list_work_reports",
    summary="Submitted reports of the people in your reach (and your own drafts), newest period first",
    response_class=Response,
)
def list_reports(
    database: DatabaseDep,
    actor: CurrentActor,
    kind: Kind,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    last = to or _today()
    first = from_ or last.replace(day=1)
    with database.reading(actor) as session:
        found = reports.list_reports(session, actor, kind=kind, first=first, last=last, user_id=user_id)
        names = _names(session, actor, {report.user_id for report in found})
        items = [reports.report_body(report, names) for report in found]
    return json_response({"items": items, "figure_labels": reports.figure_labels(actor.locale)})


@router.get(
    "/work-reports/{report_id}",
    operation_id="get_work_report",
    summary="One report of someone in your reach",
    response_class=Response,
)
def get_report(
    database: DatabaseDep, actor: CurrentActor, report_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:
    with database.reading(actor) as session:
        report = reports.get_report(session, actor, report_id=report_id)
        body = reports.report_body(report, _names(session, actor, {report.user_id}))
    return json_response(_with_labels(body, actor))
