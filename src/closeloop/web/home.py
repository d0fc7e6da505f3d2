"""Home: what a person opens every morning — their open tasks, their pipeline by stage, the alerts
raised for them, the records they touched recently, and the closed loop in one line.

Every figure is read within the person's row scope through the same services as the API; the
home page holds no rules of its own.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, Request
from starlette.responses import Response

from closeloop.core.clock import utcnow
from closeloop.crm import workspace
from closeloop.crm.enums import Stage
from closeloop.crm.funnel.service import FunnelFilters, measure_funnel
from closeloop.crm.opportunities import board as board_service
from closeloop.org import notifications
from closeloop.web import targets as targets_pages
from closeloop.web.board import STAGE_LABELS
from closeloop.web.i18n import DISPLAY_ZONE, N_
from closeloop.web.quality import shown_task, subject_names
from closeloop.web.routes import database_of, render, require_user

router = APIRouter(include_in_schema=False)

#: where each kind of record opens
RECORD_PAGES = {
    "account": "/accounts/{id}",
    "opportunity": "/opportunities/{id}",
    "contact": "/contacts/{id}",
    "lead": "/leads/{id}",
}
RECORD_KINDS = {
    "account": N_("Account"),
    "opportunity": N_("Opportunity"),
    "contact": N_("Contact"),
    "lead": N_("Lead"),
}
FUNNEL_STEPS = {
    "lead": N_("Lead"),
    "opportunity": N_("Opportunity"),
    "won": N_("Won"),
    "repurchase": N_("Repurchase"),
    "referral": N_("Referral"),
}


def action_label(action: str) -> str:
    """What the person did, in words (``opportunity.stage_changed`` → "Moved to another stage")."""
    verb = action.rsplit(".", 1)[-1]
    if verb == "created":
        return N_("Created it")
    if verb == "stage_changed":
        return N_("Moved to another stage")
    if verb == "converted":
        return N_("Converted")
    return N_("Updated")


def _greeting(now: datetime) -> str:
    hour = now.astimezone(DISPLAY_ZONE).hour
    if hour < 12:
        return N_("Good morning")
    if hour < 18:
        return N_("Good afternoon")
    return N_("Good evening")


@router.get("/")
def home(request: Request) -> Response:
    user, actor = require_user(request)
    now = utcnow()
    with database_of(request).reading(actor) as session:
        mine, open_tasks = workspace.my_open_tasks(session, actor)
        names = subject_names(
            session, actor, {(t.subject_type, t.subject_id) for t in mine if t.subject_type and t.subject_id}
        )
        tasks = [
            {"due_on": task.due_on, "is_overdue": task.is_overdue} | shown_task(request, names, asdict(task))
            for task in mine
        ]
        touched = workspace.recently_touched(session, actor)
        alerts, _ = notifications.page(session, actor, unread_only=True, limit=5)
        unread = notifications.unread_count(session, actor)
        stages = board_service.stage_totals(session, actor) if actor.can("opportunities:read") else None
        funnel = measure_funnel(session, actor, filters=FunnelFilters()) if actor.can("funnel:read") else None
        show_amounts = board_service.can_read_amounts(session, actor)
        attainment = targets_pages.home_panel(session, actor)
    pipeline = None
    if stages is not None:
        open_columns = [stages[stage] for stage in board_service.BOARD_STAGES if not stage.is_closed]
        closed_columns = [stages[Stage.WON], stages[Stage.LOST]]
        widest = max(
            (sum(column.totals.values(), Decimal(0)) for column in stages.values()), default=Decimal(0)
        ) or Decimal(1)
        pipeline = {
            "open": open_columns,
            "closed": closed_columns,
            "count": sum(column.count for column in open_columns),
            "totals": _add_totals(open_columns),
            "widest": widest,
            "show_amounts": show_amounts,
        }
    context = {
        "user": user,
        "actor": actor,
        "greeting": _greeting(now),
        "today": now,
        "tasks": tasks,
        "open_tasks": open_tasks,
        "touched": touched,
        "alerts": alerts,
        "unread_alerts": unread,
        "pipeline": pipeline,
        "funnel": funnel,
        "stage_labels": STAGE_LABELS,
        "record_pages": RECORD_PAGES,
        "record_kinds": RECORD_KINDS,
        "funnel_steps": FUNNEL_STEPS,
        "action_label": action_label,
        "closed_window_days": board_service.CLOSED_WINDOW_DAYS,
        "attainment": attainment,
        "metric_labels": targets_pages.METRIC_LABELS,
    }
    return render(request, "home.html", context)


def _add_totals(columns: list[board_service.Column]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for column in columns:
        for currency, amount in column.totals.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals
