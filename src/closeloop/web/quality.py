"""Data-quality pages (issue #7 item 8): the quality dashboard (defects per kind, the open defects
with filters, KPIs with history, a scan on demand, the freshness of fields and feeds), my tasks,
and the data asset map with inline edit — the same services and checks as the API."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import utcnow
from closeloop.core.errors import DomainError, NotFound, ValidationFailed
from closeloop.core.messages import FIELD_LABELS
from closeloop.crm import assets, records
from closeloop.crm.tasks import service as task_service
from closeloop.crm.tasks.models import Task, TaskStatus
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.db.session import after_commit
from closeloop.governance.permissions import Role
from closeloop.integrations.importing.feeds import SOURCES
from closeloop.org.models import User
from closeloop.quality import freshness, kpis
from closeloop.quality import service as quality_service
from closeloop.quality.rules import RULES, RULES_BY_ID, Severity
from closeloop.web.i18n import DISPLAY_ZONE, N_, ROLE_LABELS, translations
from closeloop.web.routes import database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

SEVERITY_LABELS = {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")}
SEVERITY_TONES = {"high": "bad", "medium": "warn", "low": ""}
STATUS_LABELS = {"open": N_("Unresolved"), "resolved": N_("Fixed"), "all": N_("All")}
FRESHNESS_LABELS = {
    "stale": N_("Stale"),
    "fresh": N_("Fresh"),
    "irregular": N_("No regular rhythm"),
    "muted": N_("Muted"),
}
FRESHNESS_TONES = {"stale": "bad", "fresh": "good", "irregular": "", "muted": ""}
GROUP_LABELS = {"owner": N_("Owner"), "team": N_("Team"), "region": N_("Region"), "organization": N_("Organization")}
SCAN_STATES = {"queued": N_("Queued"), "running": N_("Running"), "done": N_("Done"), "failed": N_("Failed")}
NOUN_LABELS = {
    "account": N_("Account"),
    "activity": N_("Activity"),
    "contact": N_("Contact"),
    "contract": N_("Contract"),
    "lead": N_("Lead"),
    "opportunity": N_("Opportunity"),
    "order": N_("Order"),
    "product": N_("Product"),
    "product_line": N_("Product line"),
    "quote": N_("Quote"),
    "referral": N_("Referral"),
    "ticket": N_("Service ticket"),
    "task": N_("Task"),
}
ASSET_KINDS = {"record_type": N_("Record type"), "field_group": N_("Field group"), "metric": N_("Metric")}
RACI = ("produced_by", "consumed_by", "responsible", "consulted", "informed")
PARTIES = (*(role.value for role in Role), "system")
PARTY_LABELS = {**ROLE_LABELS, "system": N_("System")}
_NAME_COLUMNS = ("name", "title", "subject", "company")


#: where the workspace shows each kind of record (activities and other records have no page of
#: their own: they are fixed through their edit form)
RECORD_PAGES = {
    "account": "/accounts/{id}",
    "contact": "/contacts/{id}",
    "lead": "/leads/{id}",
    "opportunity": "/opportunities/{id}",
    "activity": "/activities/{id}/edit",
}


def record_link(request: Request, subject_type: str | None, subject_id: int | None) -> str | None:
    """The page where the record is looked at and fixed (None when the workspace has none)."""
    if subject_type is None or subject_id is None or subject_type not in RECORD_PAGES:
        return None
    return RECORD_PAGES[subject_type].format(id=subject_id)


def subject_names(session: Session, actor: Actor, subjects: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The name of each record the actor may see (read through the scope door; names are never masked)."""
    wanted: dict[str, list[int]] = defaultdict(list)
    for noun, record_id in subjects:
        wanted[noun].append(record_id)
    names: dict[tuple[str, int], str] = {}
    for noun, ids in wanted.items():
        try:
            model = records.record_type_for(noun).model
        except KeyError:
            continue
        column = next((getattr(model, name) for name in _NAME_COLUMNS if hasattr(model, name)), None)
        if column is None:
            continue
        statement = (
            visible(actor, model, access=RowAccess.READ).where(model.id.in_(ids)).with_only_columns(model.id, column)
        )
        names.update({(noun, row[0]): str(row[1]) for row in session.execute(statement) if row[1]})
    return names


def _user_names(session: Session, actor: Actor) -> dict[int, str]:
    rows = session.execute(
        select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User)).order_by(User.id)
    )
    return {row.id: row.display_name for row in rows}


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationFailed.one(name, "must be a whole number") from None
    if not 1 <= number < 2**63:
        raise ValidationFailed.one(name, "out of range")
    return number


# --- /quality ---------------------------------------------------------------------------------------


def _kpi_groups(actor: Actor) -> list[str]:
    groups = ["owner", "team"]
    if actor.scope is RowScope.ALL:
        groups += ["region", "organization"]
    return groups


@router.get("/quality")
def quality_page(
    request: Request,
    rule: str | None = None,
    severity: str | None = None,
    owner_id: str | None = None,
    status: str = "open",
    cursor: str | None = None,
    group_by: str | None = None,
) -> Response:
    user, actor = require_user(request)
    locale = locale_of(request)
    groups = _kpi_groups(actor)
    group = group_by if group_by in groups else groups[-1]
    filters = quality_service.DefectFilters(
        rule=rule or None,
        severity=severity or None,
        owner_id=_int(owner_id, "owner_id"),
        status=status or "open",
    )
    with database_of(request).reading(actor) as session:
        page = quality_service.list_defects(session, actor, filters=filters, limit=25, cursor=cursor or None)
        counts = quality_service.defect_counts(session, actor)
        latest = quality_service.latest_scan(session, actor)
        report = kpis.kpi_report(session, actor, group_by=group, history=30)
        feeds = freshness.report(session, actor, sources=SOURCES)
        names = subject_names(session, actor, {(d["subject_type"], d["subject_id"]) for d in page.items})
        users = _user_names(session, actor)
    by_severity = {level.value: 0 for level in Severity}
    for item in RULES:
        by_severity[item.severity.value] += counts.get(item.id, 0)
    order = {level.value: index for index, level in enumerate(Severity)}
    rules = [
        {"id": item.id, "severity": item.severity.value, "count": counts.get(item.id, 0), "rule": item}
        for item in sorted(RULES, key=lambda item: (-counts.get(item.id, 0), order[item.severity.value], item.id))
    ]
    defects = [
        {
            **defect,
            "name": names.get((defect["subject_type"], defect["subject_id"])),
            "owner": users.get(defect["owner_id"]) if defect["owner_id"] else None,
            "href": record_link(request, defect["subject_type"], defect["subject_id"]),
            "advice": RULES_BY_ID[defect["rule"]].advice(locale) if defect["rule"] in RULES_BY_ID else "",
        }
        for defect in page.items
    ]
    # the chart: the newest group's history when one group is shown, else the organization-wide one
    chart_source = report[0] if report else None
    chart = None
    if chart_source is not None:
        points = sorted(chart_source["history"], key=lambda point: point["taken_at"])
        chart = {
            "dates": [point["taken_at"].strftime("%m-%d %H:%M") for point in points],
            "series": [
                [key, [None if point.get(key) is None else round(point[key] * 100, 1) for point in points]]
                for key in ("title_freshness", "stage_log_completeness", "duplicate_rate")
            ],
        }
    owners_filter = sorted(
        (
            (user_id, name)
            for user_id, name in users.items()
            if actor.scope is RowScope.ALL or user_id in actor.owner_ids
        ),
        key=lambda entry: entry[1],
    )
    context = {
        "user": user,
        "actor": actor,
        "rules": rules,
        "by_severity": by_severity,
        "total_open": sum(counts.values()),
        "defects": defects,
        "next_cursor": page.next_cursor,
        "filters": {"rule": rule or "", "severity": severity or "", "owner_id": owner_id or "", "status": status},
        "next_query": urlencode(
            {k: v for k, v in {"rule": rule, "severity": severity, "owner_id": owner_id, "status": status}.items() if v}
        ),
        "owners": owners_filter if len(owners_filter) > 1 else [],
        "latest": latest,
        "kpis": report,
        "groups": groups,
        "group_by": group,
        "chart": chart,
        "feeds": feeds,
        "feed_label": _feed_labeller(locale_of(request)),
        "severity_labels": SEVERITY_LABELS,
        "severity_tones": SEVERITY_TONES,
        "status_labels": STATUS_LABELS,
        "freshness_labels": FRESHNESS_LABELS,
        "freshness_tones": FRESHNESS_TONES,
        "group_labels": GROUP_LABELS,
        "scan_states": SCAN_STATES,
        "noun_labels": NOUN_LABELS,
        "can_scan": actor.can("quality:scan"),
    }
    return render(request, "quality/index.html", context)


def enqueue_scan(organization_id: int, scan_id: int) -> None:
    """Hand the scan to the background worker (called once its row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_quality_scan(organization_id, scan_id)


@router.post("/quality/scans")
def start_scan(request: Request, csrf: str = Form(""), full: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        scan = quality_service.request_scan(session, actor, full=bool(full))
        scan_id, organization_id = scan.id, actor.organization_id
        after_commit(session, lambda: enqueue_scan(organization_id, scan_id))
    if is_htmx(request):
        return _scan_fragment(request, actor, scan_id)
    return RedirectResponse("/quality", status_code=303)


def _scan_fragment(request: Request, actor: Actor, scan_id: int) -> Response:
    with database_of(request).reading(actor) as session:
        scan = quality_service.get_scan(session, actor, scan_id=scan_id)
    return render(
        request,
        "quality/scan.html",
        {"actor": actor, "scan": scan, "scan_states": SCAN_STATES},
    )


@router.get("/quality/scans/{scan_id}")
def scan_progress(request: Request, scan_id: int) -> Response:
    """The scan's progress, polled by the page every second while it is queued or running."""
    _user, actor = require_user(request)
    if not 1 <= scan_id < 2**63:
        raise NotFound("quality scan", scan_id)
    return _scan_fragment(request, actor, scan_id)


# --- /tasks -------------------------------------------------------------------------------------------


def shown_task(request: Request, names: Mapping[tuple[str, int], str], task: Mapping[str, Any]) -> dict[str, Any]:
    """How a task reads for the viewer: a data-quality task in the viewer's language (whatever the
    organization's is), named after its record, and a link to the record's *page* — the home page
    and the task list show the same. ``task`` has the task's title, description, source, subject and
    link."""
    subject = (task["subject_type"], task["subject_id"]) if task["subject_type"] else None
    name = names.get(subject) if subject else None
    rule = RULES_BY_ID.get((task["source"] or "").removeprefix("quality:")) if task["source"] else None
    shown = {"title": task["title"], "description": task["description"]}
    if rule is not None:
        locale = locale_of(request)
        shown = {
            "title": f"{rule.label(locale)}: {name or '#' + str(task['subject_id'])}",
            "description": rule.advice(locale),
        }
    href = (record_link(request, task["subject_type"], task["subject_id"]) if subject else None) or task["link"]
    return {**shown, "name": name, "href": href, "rule": rule}


def _tasks_context(request: Request, user: User, actor: Actor, status: str, cursor: str = "") -> dict[str, Any]:
    params = {"owner_id": str(user.id), "status": status, "limit": "100"}
    if cursor:
        params["cursor"] = cursor
    params["sort"] = "due_on" if status == "open" else "-closed_at"
    with database_of(request).reading(actor) as session:
        page = records.read_page(session, actor, task_service.TASKS, params)
        counted = session.execute(
            visible(actor, Task, access=RowAccess.READ)
            .where(Task.owner_id == user.id)
            .group_by(Task.status)
            .with_only_columns(Task.status, func.count())
        )
        counts = {"open": 0, "done": 0} | {str(state): int(number) for state, number in counted}
        names = subject_names(
            session, actor, {(t["subject_type"], t["subject_id"]) for t in page.items if t["subject_type"]}
        )
    items = [{**task, **shown_task(request, names, task)} for task in page.items]
    return {
        "user": user,
        "actor": actor,
        "tasks": items,
        "status": status,
        "counts": counts,
        "more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
        "cursor": cursor,
        "today": utcnow().astimezone(DISPLAY_ZONE).date(),
        "noun_labels": NOUN_LABELS,
        "severity_labels": SEVERITY_LABELS,
        "severity_tones": SEVERITY_TONES,
    }


@router.get("/tasks")
def tasks_page(request: Request, status: str = "open", cursor: str = "") -> Response:
    user, actor = require_user(request)
    if status not in ("open", "done"):
        status = "open"
    return render(request, "quality/tasks.html", _tasks_context(request, user, actor, status, cursor[:500]))


@router.post("/tasks/{task_id}/done")
def mark_done(request: Request, task_id: int, csrf: str = Form(""), status: str = Form("done")) -> Response:
    """Mark one of my tasks done (or open again); audited like any change of a task."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    if not 1 <= task_id < 2**63:
        raise NotFound("task", task_id)
    target = TaskStatus.OPEN if status == "open" else TaskStatus.DONE
    with database_of(request).unit_of_work(actor) as session:
        task_service.update_task(session, actor, task_id=task_id, data={"status": target})
    if is_htmx(request):
        context = _tasks_context(request, user, actor, "open" if target is TaskStatus.DONE else "done")
        return render(request, "quality/tasks_list.html", context)
    return RedirectResponse("/tasks", status_code=303)


# --- /settings/assets ----------------------------------------------------------------------------------


def _feed_labeller(locale: str) -> Callable[[Any], str]:
    """A freshness feed's name with its field by the field's label (``客户 · 行业``), not its key."""
    gettext = translations(locale).gettext

    def label(feed: Any) -> str:
        key = "label_en" if locale == "en" else "label_zh"
        shown = str(feed.get(key) if isinstance(feed, dict) else getattr(feed, key))
        head, separator, tail = shown.rpartition(" · ")
        known = FIELD_LABELS.get(tail)
        return f"{head} · {gettext(known)}" if separator and known else shown

    return label


def _field_group_names(rows: list[dict[str, Any]], locale: str) -> None:
    """A field group's name lists its fields by their labels (商机财务字段（毛利率）), not their keys."""
    gettext = translations(locale).gettext
    for row in rows:
        if row.get("kind") != "field_group":
            continue
        for key in ("name_zh", "name_en"):
            text = str(row.get(key) or "")
            opening, closing = ("（", "）") if key == "name_zh" else ("(", ")")
            head, found, rest = text.partition(opening)
            if found and rest.endswith(closing):
                names = [name.strip() for name in rest[: -len(closing)].split(",")]
                translate = gettext if key == "name_zh" and locale != "en" else (lambda text: text)
                labels = [translate(FIELD_LABELS[name]) if name in FIELD_LABELS else name for name in names]
                row[key] = f"{head}{opening}{'、'.join(labels) if key == 'name_zh' else ', '.join(labels)}{closing}"


def _assets_context(request: Request, user: User, actor: Actor) -> dict[str, Any]:
    with database_of(request).reading(actor) as session:
        rows = assets.rows(session, actor)
    _field_group_names(rows, locale_of(request))
    with database_of(request).reading(actor) as session:
        people = [
            (row.id, row.display_name)
            for row in session.execute(
                select(User.id, User.display_name)
                .where(tenant_clause(actor.organization_id, User), User.is_active)
                .order_by(User.display_name)
            )
        ]
    return {
        "user": user,
        "actor": actor,
        "rows": rows,
        "people": people,
        "parties": PARTIES,
        "party_labels": PARTY_LABELS,
        "raci": RACI,
        "kinds": ASSET_KINDS,
        "can_edit": actor.can("schema:manage"),
        "needs_owner": sum(1 for row in rows if row["needs_owner"]),
        "editing": None,
        "error": None,
    }


@router.get("/settings/assets")
def assets_page(request: Request, edit: str | None = None) -> Response:
    user, actor = require_user(request)
    context = _assets_context(request, user, actor)
    context["editing"] = edit if context["can_edit"] else None
    return render(request, "quality/assets.html", context)


@router.post("/settings/assets/{kind}/{key}")
async def save_asset(request: Request, kind: str, key: str) -> Response:
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    accountable = _int(str(form.get("accountable_user_id") or ""), "accountable_user_id")
    data = assets.AssetUpdate(
        **{name: [str(value) for value in form.getlist(name)] for name in RACI},
        accountable_user_id=accountable,
        notes=str(form.get("notes") or "")[:2000] or None,
    )
    try:
        with database_of(request).unit_of_work(actor) as session:
            assets.maintain(session, actor, kind=kind[:40], key=key[:120], data=data)
    except ValidationFailed as error:
        context = _assets_context(request, user, actor)
        context.update(editing=f"{kind}/{key}", error=error)
        return render(request, "quality/assets.html", context, status_code=error.status)
    except DomainError:
        raise
    return RedirectResponse(f"/settings/assets#asset-{kind}-{key.replace('.', '-')}", status_code=303)
